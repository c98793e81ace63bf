"""`python train.py`: patient split -> cached frozen trunk -> head -> fine-tune -> publish.

Fitting a 2-core CPU: the entry flow and the first middle-flow blocks stay frozen, so their
output is computed once per image and per augmented view and cached (float16, in memory);
the last middle-flow blocks and the exit flow are then fine-tuned on that cache.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pneumoscan.dataset import fingerprint, list_labelled_images, split_by_patient, training_folder
from pneumoscan.training.served_files import load_pixels, model_inputs

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fine-tune Xception on the chest X-ray training folder.")
    parser.add_argument("--data", type=Path, default=training_folder(), help="folder with NORMAL/ and PNEUMONIA/")
    parser.add_argument("--out", type=Path, default=REPO / "model_weights", help="where the served model goes")
    parser.add_argument("--build-dir", type=Path, default=REPO / "build", help="checkpoint and report folder")
    parser.add_argument("--base-weights", default="package", help="imagenet | package | none | PATH")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--views", type=int, default=4, help="cached views per training image (1 plain + augmented)")
    parser.add_argument("--cache-layer", default="add_6", help="frozen up to this layer (add_6 = end of block 8)")
    parser.add_argument("--head-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs at most")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--threshold-policy", choices=("sensitivity", "youden"), default="sensitivity")
    parser.add_argument("--min-sensitivity", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0 = all cores)")
    return parser.parse_args(argv)


def cache_trunk(trunk, pixels: np.ndarray, views: int, seed: int, batch: int = 64) -> np.ndarray:
    """Frozen-trunk output for `views` views of every image: (views, N, h, w, c) float16.
    View 0 is the image as served; the others are augmented."""
    import tensorflow as tf
    from tqdm import tqdm

    from pneumoscan.training.augment import augment

    forward = tf.function(lambda x: trunk(x, training=False))
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in trunk.output.shape[1:])
    cache = np.empty((views, len(pixels), *shape), dtype=np.float16)
    with tqdm(total=views * len(pixels), desc="cache frozen trunk", unit="img") as bar:
        for view in range(views):
            for start in range(0, len(pixels), batch):
                chunk = pixels[start : start + batch]
                if view:
                    chunk = [augment(p, rng) for p in chunk]
                x = model_inputs(chunk)
                cache[view, start : start + len(x)] = forward(x).numpy().astype(np.float16)
                bar.update(len(x))
    return cache


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Balance the 1:2.9 NORMAL:PNEUMONIA ratio so both classes weigh the same in the loss."""
    counts = np.bincount(labels, minlength=2)
    return {c: float(len(labels) / (2 * counts[c])) for c in (0, 1)}


def train_head(model, cache: np.ndarray, labels: np.ndarray, args: argparse.Namespace) -> None:
    """Fit the logit on pooled features of the plain view, with the whole trunk frozen."""
    import keras

    from pneumoscan.training.xception import LOGIT_LAYER, submodel_from

    pooled = submodel_from(model, args.cache_layer, "avg_pool").predict(
        cache[0].astype(np.float32), batch_size=64, verbose=1
    )
    features = keras.Input(shape=(pooled.shape[1],))
    head = keras.Model(features, model.get_layer(LOGIT_LAYER)(model.get_layer("head_dropout")(features)))
    head.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    head.fit(pooled, labels.astype(np.float32), epochs=args.head_epochs, batch_size=64,
             class_weight=class_weights(labels), verbose=2)


def fine_tune(top, cache: np.ndarray, labels: np.ndarray, val_cache: np.ndarray, val_labels: np.ndarray,
              args: argparse.Namespace) -> dict:
    """Unfreeze everything after the cache except BatchNormalization, which stays in inference mode."""
    import keras

    class Views(keras.utils.PyDataset):
        """Each epoch shows every image once, each time in a randomly chosen cached view."""

        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(args.seed)
            self.weights = class_weights(labels)
            self.on_epoch_end()

        def __len__(self) -> int:
            return int(np.ceil(len(labels) / args.batch_size))

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(labels))
            self.view = self.rng.integers(0, cache.shape[0], size=len(labels))

        def __getitem__(self, index: int):
            rows = self.order[index * args.batch_size : (index + 1) * args.batch_size]
            x = cache[self.view[rows], rows].astype(np.float32)
            y = labels[rows].astype(np.float32)
            return x, y, np.array([self.weights[int(v)] for v in labels[rows]], dtype=np.float32)

    for layer in top.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    top.compile(
        keras.optimizers.Adam(args.learning_rate),
        keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
    )
    history = top.fit(
        Views(),
        validation_data=(val_cache[0].astype(np.float32), val_labels.astype(np.float32)),
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=1, verbose=1),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True, verbose=1),
        ],
        verbose=1,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.time()
    import keras
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    from pneumoscan.training.xception import build_model, submodel_from, trunk_until

    items = list_labelled_images(args.data)
    train, val = split_by_patient(items, args.val_fraction, args.seed)
    split = {
        "seed": args.seed, "val_fraction": args.val_fraction,
        "train": {"images": len(train), "normal": sum(i.label == 0 for i in train), "patients": len({i.patient for i in train})},
        "val": {"images": len(val), "normal": sum(i.label == 0 for i in val), "patients": len({i.patient for i in val})},
        "data_fingerprint": fingerprint(items), "val_fingerprint": fingerprint(val),
    }
    print(json.dumps(split, indent=1))
    labels = np.array([i.label for i in train])
    val_labels = np.array([i.label for i in val])
    pixels, val_pixels = load_pixels(train), load_pixels(val)

    model = build_model(args.base_weights)
    trunk, top = trunk_until(model, args.cache_layer), submodel_from(model, args.cache_layer)
    cache = cache_trunk(trunk, pixels, args.views, args.seed)
    val_cache = cache_trunk(trunk, val_pixels, 1, args.seed)
    train_head(model, cache, labels, args)
    history = fine_tune(top, cache, labels, val_cache, val_labels, args)
    del cache, val_cache
    args.build_dir.mkdir(parents=True, exist_ok=True)
    model.save(args.build_dir / "model.keras")
    train_seconds = time.time() - started
    print(f"training took {train_seconds / 60:.1f} min; checkpoint {args.build_dir / 'model.keras'}")
    (args.build_dir / "training.json").write_text(json.dumps(
        {"split": split, "history": history, "train_seconds": train_seconds, "args": {k: str(v) for k, v in vars(args).items()}},
        indent=1))

    from pneumoscan.training.publish import publish

    publish(model, train, val, args, split, history, started)
