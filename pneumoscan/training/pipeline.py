"""Patient split -> cached frozen trunk -> head -> fine-tuning: the trained Keras model.

Fitting a 2-core CPU: the layers up to `cache_layer` stay frozen, so their output is computed
once per image and per augmented view and cached (float16, in memory); everything after it is
then fine-tuned on that cache.

LP-FT (Kumar et al., ICLR 2022): the two logits are first fitted on frozen pooled features, then
the trunk after the cache is fine-tuned gently. From epoch `average_from` on, the weights are
taken every `average_every` batches into a running mean, which is what is served (dense
stochastic weight averaging, as SWAD does): one network's cost with much of an ensemble's
steadiness off distribution. The start (ImageNet trunk with the fitted logits) is kept too, for
WiSE-FT's interpolation at publishing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pneumoscan.dataset import LabelledImage, fingerprint, list_labelled_images, split_by_patient
from pneumoscan.preprocess import Preprocessing
from pneumoscan.training.augment import augment
from pneumoscan.training.config import TrainConfig, config_from_dict
from pneumoscan.training.corruptions import family_set
from pneumoscan.training.served_files import load_pixels, model_inputs
from pneumoscan.training.sharpness import SharpnessAware
from pneumoscan.training.xception import LOGIT_LAYER, build_model, submodel_from, trunk_until

START_FILE = "start_weights.npz"


@dataclass
class Trained:
    """A fine-tuned model with the split it was trained on and how training went."""

    model: object
    start_weights: list[np.ndarray]
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
    augmenter: Callable[[np.ndarray, np.random.Generator], np.ndarray] = augment,
    batch: int = 64,
) -> np.ndarray:
    """Frozen-trunk output for `views` views of every image: (views, N, h, w, c) float16.
    View 0 is the image as served; the others are `augmenter`'s."""
    forward = tf.function(lambda x: trunk(x, training=False))
    shape = tuple(int(d) for d in trunk.output.shape[1:])
    cache = np.empty((views, len(pixels), *shape), dtype=np.float16)
    with tqdm(total=views * len(pixels), desc="cache frozen trunk", unit="img") as bar:
        for view in range(views):
            for start in range(0, len(pixels), batch):
                chunk = pixels[start : start + batch]
                if view:
                    chunk = np.stack([augmenter(p, rng) for p in chunk])
                x = model_inputs(chunk, preprocessing)
                cache[view, start : start + len(x)] = forward(x).numpy().astype(np.float16)
                bar.update(len(x))
    return cache


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Weights that make both classes weigh the same in the loss (NORMAL:PNEUMONIA is 1:2.9,
    bacterial:viral 1.9:1)."""
    counts = np.bincount(labels, minlength=2)
    return (len(labels) / (2 * counts)).astype(np.float32)


def targets(items: list[LabelledImage]) -> np.ndarray:
    """(N, 2) float32: pneumonia 0/1, and viral 0/1 for pneumonia images, -1 (no target) for normal."""
    return np.array([[i.label, i.viral if i.label else -1] for i in items], dtype=np.float32)


def pairwise_ranking_loss(pneumonia, logit):
    """Mean softplus(normal logit - pneumonia logit) over the batch's normal/pneumonia pairs (0
    where the batch has no pair): RankNet's smooth surrogate of 1 - AUC, which cross-entropy only
    reaches through each image's own distance from 0."""
    positive = keras.ops.cast(pneumonia > 0.5, "float32")
    pairs = positive[:, None] * (1 - positive)[None, :]
    margins = logit[:, None] - logit[None, :]
    return keras.ops.sum(pairs * keras.ops.softplus(-margins)) / keras.ops.maximum(keras.ops.sum(pairs), 1.0)


def two_task_loss(
    y: np.ndarray, label_smoothing: float, subtype_weight: float = 1.0, ranking_weight: float = 0.0
):
    """Class-balanced binary cross-entropy on both logits, the viral one weighted by
    `subtype_weight`; the viral logit learns only from pneumonia images (the subtype of a normal
    X-ray means nothing). `ranking_weight` adds the batch's pairwise ranking loss on the pneumonia
    logit to every image's loss (so the batch mean gains it once)."""
    pneumonia_weights = class_weights(y[:, 0].astype(int))
    viral_weights = subtype_weight * class_weights(y[y[:, 1] >= 0, 1].astype(int))

    def smoothed_bce(target, logit):
        target = target * (1 - label_smoothing) + 0.5 * label_smoothing
        return keras.ops.binary_crossentropy(target, logit, from_logits=True)

    def one_target(pneumonia, viral, y_pred):
        has_subtype = keras.ops.cast(viral >= 0, "float32")
        viral = keras.ops.maximum(viral, 0.0)
        weight_p = keras.ops.take(pneumonia_weights, keras.ops.cast(pneumonia, "int32"))
        weight_v = keras.ops.take(viral_weights, keras.ops.cast(viral, "int32")) * has_subtype
        return weight_p * smoothed_bce(pneumonia, y_pred[:, 0]) + weight_v * smoothed_bce(viral, y_pred[:, 1])

    def loss(y_true, y_pred):
        """`y_true` (N, 2), or (N, 5) under mixup: both images' targets and the first one's share."""
        own = one_target(y_true[:, 0], y_true[:, 1], y_pred)
        if y_true.shape[1] == 2:
            if ranking_weight:
                return own + ranking_weight * pairwise_ranking_loss(y_true[:, 0], y_pred[:, 0])
            return own
        share = y_true[:, 4]
        return share * own + (1 - share) * one_target(y_true[:, 2], y_true[:, 3], y_pred)

    return loss


def train_head(model, cache: np.ndarray, y: np.ndarray, config: TrainConfig) -> None:
    """Fit both logits on pooled features of the plain view, with the whole trunk frozen."""
    pooled = submodel_from(model, config.cache_layer, "avg_pool").predict(
        cache[0].astype(np.float32), batch_size=64, verbose=1
    )
    features = keras.Input(shape=(pooled.shape[1],))
    head = keras.Model(features, model.get_layer(LOGIT_LAYER)(model.get_layer("head_dropout")(features)))
    head.compile(keras.optimizers.Adam(1e-3), two_task_loss(y, config.label_smoothing))
    head.fit(pooled, y, epochs=config.head_epochs, batch_size=64, verbose=2)


def fine_tune(
    top,
    cache: np.ndarray,
    y: np.ndarray,
    val_cache: np.ndarray,
    val_y: np.ndarray,
    config: TrainConfig,
) -> dict:
    """Unfreeze everything after the cache (BatchNormalization too if `batch_norm` is trained;
    frozen, it stays in inference mode); run `epochs` epochs and leave `top` with the average of
    the weights taken in epochs `average_from`..`epochs` (the last epoch's alone when
    `average_from` is beyond it)."""

    class Views(keras.utils.PyDataset):
        """Each epoch shows every image once, each time in a randomly chosen cached view (mixed
        with another image of the batch under `mixup`)."""

        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(config.seed)
            self.on_epoch_end()

        def __len__(self) -> int:
            return int(np.ceil(len(y) / config.batch_size))

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(y))
            self.view = self.rng.integers(0, cache.shape[0], size=len(y))

        def __getitem__(self, index: int):
            rows = self.order[index * config.batch_size : (index + 1) * config.batch_size]
            x = cache[self.view[rows], rows].astype(np.float32)
            if not config.mixup:
                return x, y[rows]
            share = self.rng.beta(config.mixup, config.mixup, size=len(rows)).astype(np.float32)
            partner = self.rng.permutation(len(rows))
            mixed = share[:, None, None, None] * x + (1 - share[:, None, None, None]) * x[partner]
            return mixed, np.column_stack([y[rows], y[rows][partner], share])

    class KeepAverage(keras.callbacks.Callback):
        """Running mean of the weights from epoch `average_from` on: after each epoch, or every
        `average_every` batches within it (at most an epoch's batches, so a small data set still
        averages once per epoch rather than never)."""

        def __init__(self, batches_per_epoch: int) -> None:
            super().__init__()
            self.every = min(config.average_every, batches_per_epoch)
            self.mean: list[np.ndarray] | None = None
            self.count = 0
            self.epoch = 0

        def averaging(self) -> bool:
            return self.epoch + 1 >= min(config.average_from, config.epochs)

        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs=None) -> None:
            if self.every and self.averaging() and (batch + 1) % self.every == 0:
                self.take()

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            if not self.every and self.averaging():
                self.take()

        def take(self) -> None:
            weights = [w.astype(np.float64) for w in top.get_weights()]
            self.count += 1
            self.mean = (
                weights
                if self.mean is None
                else [m + (w - m) / self.count for m, w in zip(self.mean, weights, strict=True)]
            )

    if config.mixup and config.ranking_weight:
        raise ValueError("the ranking loss needs each image's own target: not with mixup")
    if config.batch_norm not in ("frozen", "trained"):
        raise ValueError(f"batch_norm is frozen or trained, not {config.batch_norm!r}")
    views = Views()
    for layer in top.layers:
        layer.trainable = config.batch_norm == "trained" or not isinstance(
            layer, keras.layers.BatchNormalization
        )
    learner = SharpnessAware(top, config.sam_rho) if config.sam_rho else top
    learner.compile(
        keras.optimizers.Adam(config.learning_rate),
        two_task_loss(y, config.label_smoothing, config.subtype_weight, config.ranking_weight),
    )
    average = KeepAverage(len(views))
    history = learner.fit(
        views,
        validation_data=(val_cache[0].astype(np.float32), val_y),
        epochs=config.epochs,
        callbacks=[average],
        verbose=1,
    )
    top.set_weights([m.astype(np.float32) for m in average.mean])
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def soup(
    model, top, start_weights: list[np.ndarray], data: tuple, config: TrainConfig, started: float
) -> dict:
    """Fine-tune `config.soup` times from the one linear-probe start, seeds seed, seed+1, ..., and
    leave `model` with the uniform average of their weights (Wortsman et al., ICML 2022: members
    that share a start average into one network). The history is the members' mean per epoch."""
    members, histories = [], []
    for member in range(config.soup):
        member_config = replace(config, seed=config.seed + member)
        if member:  # the first run continues as a run without a soup would, so --soup 1 is unchanged
            model.set_weights(start_weights)
            keras.utils.set_random_seed(member_config.seed)
        histories.append(fine_tune(top, *data, member_config))
        members.append(model.get_weights())
        print(f"fine-tuning run {member + 1}/{config.soup} done at {(time.time() - started) / 60:.1f} min")
    model.set_weights([np.mean(weights, axis=0) for weights in zip(*members, strict=True)])
    return {key: np.mean([h[key] for h in histories], axis=0).tolist() for key in histories[0]}


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
    y, val_y = targets(train_items), targets(val_items)
    pixels, val_pixels = load_pixels(train_items), load_pixels(val_items)

    model = build_model(config.base_weights, input_size=config.input_size)
    trunk, top = trunk_until(model, config.cache_layer), submodel_from(model, config.cache_layer)
    rng = np.random.default_rng(config.seed)
    augmenter = partial(
        augment,
        corruption=config.corruption,
        text=config.burned_in_text,
        photometric=config.photometric,
        geometric=config.geometric,
        families=family_set(config.corruption_families),
    )
    cache = cache_trunk(trunk, pixels, config.views, rng, config.preprocessing, augmenter)
    val_cache = cache_trunk(trunk, val_pixels, 1, rng, config.preprocessing)
    print(f"trunk cached in {(time.time() - started) / 60:.1f} min")
    train_head(model, cache, y, config)
    start_weights = model.get_weights()
    print(f"linear probe done at {(time.time() - started) / 60:.1f} min")
    history = soup(model, top, start_weights, (cache, y, val_cache, val_y), config, started)
    del cache, val_cache
    seconds = time.time() - started
    config.build_dir.mkdir(parents=True, exist_ok=True)
    model.save(config.build_dir / "model.keras")
    np.savez(config.build_dir / START_FILE, *start_weights)
    (config.build_dir / "training.json").write_text(
        json.dumps(
            {"split": split, "history": history, "train_seconds": seconds, "config": config.as_dict()},
            indent=1,
        )
    )
    print(f"training took {seconds / 60:.1f} min; checkpoint {config.build_dir / 'model.keras'}")
    return Trained(model, start_weights, train_items, val_items, split, history, seconds)


def load_checkpoint(build_dir: Path) -> tuple[Trained, TrainConfig]:
    """The model and split that `train` saved in build_dir, to publish again without training."""
    saved = json.loads((build_dir / "training.json").read_text())
    config = replace(config_from_dict(saved["config"]), build_dir=build_dir)
    train_items, val_items = split_by_patient(
        list_labelled_images(config.data), config.val_fraction, config.split_seed
    )
    model = keras.models.load_model(build_dir / "model.keras", compile=False)
    with np.load(build_dir / START_FILE) as start:
        start_weights = [start[f"arr_{i}"] for i in range(len(start.files))]
    return Trained(
        model, start_weights, train_items, val_items, saved["split"], saved["history"], saved["train_seconds"]
    ), config
