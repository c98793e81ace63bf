"""Patient split -> cached frozen trunk -> head -> fine-tuning: the trained Keras model.

Fitting a 2-core CPU: the layers up to `cache_layer` stay frozen, so their output is computed
once per image and per augmented view and cached (float16, in memory); everything after it is
then fine-tuned on that cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pneumoscan.dataset import LabelledImage, fingerprint, list_labelled_images, split_by_patient
from pneumoscan.preprocess import Preprocessing
from pneumoscan.training.augment import augment
from pneumoscan.training.config import TrainConfig, config_from_dict
from pneumoscan.training.served_files import load_pixels, model_inputs
from pneumoscan.training.xception import LOGIT_LAYER, build_model, submodel_from, trunk_until


@dataclass
class Trained:
    """A fine-tuned model with the split it was trained on and how training went."""

    model: object
    train: list[LabelledImage]
    val: list[LabelledImage]
    split: dict
    history: dict
    seconds: float


def describe_split(
    items: list[LabelledImage], train: list[LabelledImage], val: list[LabelledImage], config: TrainConfig
) -> dict:
    def counts(part: list[LabelledImage]) -> dict:
        return {
            "images": len(part),
            "normal": sum(i.label == 0 for i in part),
            "patients": len({i.patient for i in part}),
        }

    return {
        "seed": config.split_seed,
        "val_fraction": config.val_fraction,
        "train": counts(train),
        "val": counts(val),
        "data_fingerprint": fingerprint(items),
        "val_fingerprint": fingerprint(val),
    }


def cache_trunk(
    trunk,
    pixels: np.ndarray,
    views: int,
    rng: np.random.Generator,
    preprocessing: Preprocessing,
    corruption: float,
    batch: int = 64,
) -> np.ndarray:
    """Frozen-trunk output for `views` views of every image: (views, N, h, w, c) float16.
    View 0 is the image as served; the others are augmented."""
    forward = tf.function(lambda x: trunk(x, training=False))
    shape = tuple(int(d) for d in trunk.output.shape[1:])
    cache = np.empty((views, len(pixels), *shape), dtype=np.float16)
    with tqdm(total=views * len(pixels), desc="cache frozen trunk", unit="img") as bar:
        for view in range(views):
            for start in range(0, len(pixels), batch):
                chunk = pixels[start : start + batch]
                if view:
                    chunk = np.stack([augment(p, rng, corruption) for p in chunk])
                x = model_inputs(chunk, preprocessing)
                cache[view, start : start + len(x)] = forward(x).numpy().astype(np.float16)
                bar.update(len(x))
    return cache


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Balance the 1:2.9 NORMAL:PNEUMONIA ratio so both classes weigh the same in the loss."""
    counts = np.bincount(labels, minlength=2)
    return {c: float(len(labels) / (2 * counts[c])) for c in (0, 1)}


def loss(config: TrainConfig):
    return keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)


def train_head(model, cache: np.ndarray, labels: np.ndarray, config: TrainConfig) -> None:
    """Fit the logit on pooled features of the plain view, with the whole trunk frozen."""
    pooled = submodel_from(model, config.cache_layer, "avg_pool").predict(
        cache[0].astype(np.float32), batch_size=64, verbose=1
    )
    features = keras.Input(shape=(pooled.shape[1],))
    head = keras.Model(features, model.get_layer(LOGIT_LAYER)(model.get_layer("head_dropout")(features)))
    head.compile(keras.optimizers.Adam(1e-3), loss(config))
    head.fit(
        pooled,
        labels.astype(np.float32),
        epochs=config.head_epochs,
        batch_size=64,
        class_weight=class_weights(labels),
        verbose=2,
    )


def fine_tune(
    top,
    cache: np.ndarray,
    labels: np.ndarray,
    val_cache: np.ndarray,
    val_labels: np.ndarray,
    config: TrainConfig,
) -> dict:
    """Unfreeze everything after the cache except BatchNormalization, which stays in inference mode."""

    class Views(keras.utils.PyDataset):
        """Each epoch shows every image once, each time in a randomly chosen cached view."""

        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(config.seed)
            self.weights = np.array([class_weights(labels)[c] for c in (0, 1)], dtype=np.float32)
            self.on_epoch_end()

        def __len__(self) -> int:
            return int(np.ceil(len(labels) / config.batch_size))

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(labels))
            self.view = self.rng.integers(0, cache.shape[0], size=len(labels))

        def __getitem__(self, index: int):
            rows = self.order[index * config.batch_size : (index + 1) * config.batch_size]
            x = cache[self.view[rows], rows].astype(np.float32)
            return x, labels[rows].astype(np.float32), self.weights[labels[rows]]

    for layer in top.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    top.compile(
        keras.optimizers.Adam(config.learning_rate),
        loss(config),
        metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
    )
    history = top.fit(
        Views(),
        validation_data=(val_cache[0].astype(np.float32), val_labels.astype(np.float32)),
        epochs=config.epochs,
        callbacks=[
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=1, verbose=1),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=3, restore_best_weights=True, verbose=1
            ),
        ],
        verbose=1,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def train(config: TrainConfig) -> Trained:
    """Fine-tune Xception on the training folder as `config` says; saves the checkpoint in build_dir."""
    started = time.time()
    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
    keras.utils.set_random_seed(config.seed)
    items = list_labelled_images(config.data)
    train_items, val_items = split_by_patient(items, config.val_fraction, config.split_seed)
    split = describe_split(items, train_items, val_items, config)
    print(json.dumps(split, indent=1))
    labels = np.array([i.label for i in train_items])
    val_labels = np.array([i.label for i in val_items])
    pixels, val_pixels = load_pixels(train_items), load_pixels(val_items)

    model = build_model(config.base_weights, input_size=config.input_size)
    trunk, top = trunk_until(model, config.cache_layer), submodel_from(model, config.cache_layer)
    rng = np.random.default_rng(config.seed)
    cache = cache_trunk(trunk, pixels, config.views, rng, config.preprocessing, config.corruption)
    val_cache = cache_trunk(trunk, val_pixels, 1, rng, config.preprocessing, config.corruption)
    train_head(model, cache, labels, config)
    history = fine_tune(top, cache, labels, val_cache, val_labels, config)
    del cache, val_cache
    seconds = time.time() - started
    config.build_dir.mkdir(parents=True, exist_ok=True)
    model.save(config.build_dir / "model.keras")
    (config.build_dir / "training.json").write_text(
        json.dumps(
            {"split": split, "history": history, "train_seconds": seconds, "config": config.as_dict()},
            indent=1,
        )
    )
    print(f"training took {seconds / 60:.1f} min; checkpoint {config.build_dir / 'model.keras'}")
    return Trained(model, train_items, val_items, split, history, seconds)


def load_checkpoint(build_dir: Path) -> tuple[Trained, TrainConfig]:
    """The model and split that `train` saved in build_dir, to publish again without training."""
    saved = json.loads((build_dir / "training.json").read_text())
    config = replace(config_from_dict(saved["config"]), build_dir=build_dir)
    train_items, val_items = split_by_patient(
        list_labelled_images(config.data), config.val_fraction, config.split_seed
    )
    model = keras.models.load_model(build_dir / "model.keras", compile=False)
    return Trained(
        model, train_items, val_items, saved["split"], saved["history"], saved["train_seconds"]
    ), config
