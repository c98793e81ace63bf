"""Training options as one frozen dataclass, built by one parser and passed down as it is."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from pneumoscan.dataset import external_folder, training_folder
from pneumoscan.preprocess import Preprocessing
from pneumoscan.threshold import QUANTILE

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "build" / "experiments"


def _option(default, help: str, **argparse_kwargs):
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what `python train.py` builds. The defaults build the committed model."""

    data: Path = _option(training_folder(), "folder with NORMAL/ and PNEUMONIA/ training X-rays")
    external_dev: Path = _option(
        external_folder(),
        "labelled folder from another collection, for model choice, threshold and calibration "
        "(never fitted on)",
    )
    out: Path = _option(REPO / "model_weights", "where the served model goes")
    build_dir: Path = _option(REPO / "build", "checkpoint and report folder")
    base_weights: str = _option("package", "imagenet | package | none | PATH")
    seed: int = _option(42, "augmentation and initialisation seed")
    split_seed: int = _option(42, "patient split seed; kept fixed so that seeds share one validation split")
    val_fraction: float = _option(0.05, "share of each class's patients in the validation split")
    input_size: int = _option(128, "model input resolution (pixels, square)")
    clahe_clip: float = _option(0.0, "CLAHE clip limit before resizing to the input (0 = no CLAHE)")
    corner_mask: float = _option(
        0.0,
        "blank the four corners of every image, train and serve alike (box height as a share of the "
        "image; 0 = keep them), where machines print times, kV codes and side letters",
    )
    views: int = _option(6, "cached views per training image (1 plain + augmented)")
    corruption: float = _option(
        0.7, "chance that an augmented view also gets a corruption (blur, JPEG, noise...)"
    )
    corruption_families: str = _option(
        "telemedicine",
        "what the corruption is drawn from: telemedicine (blur, JPEG, downscale, noise, resized crop, "
        "gamma, perspective, phone photo) or medmnist-c (those and MedMNIST-C's speckle, impulse "
        "and shot noise, pixelation, contrast and brightness)",
    )
    photometric: float = _option(
        1.0,
        "width of the augmentation's gamma, contrast and brightness ranges (1 = gamma 0.8-1.25, "
        "contrast 0.85-1.15, brightness +-0.08; 2 = gamma 0.64-1.56, contrast 0.7-1.3, +-0.16)",
    )
    geometric: float = _option(
        1.0,
        "width of the augmentation's rotation, zoom and shift ranges (1 = +-8 degrees, zoom "
        "0.92-1.12, shift +-6%; 1.5 = +-12 degrees, zoom 0.88-1.19, shift +-9%)",
    )
    burned_in_text: float = _option(
        0.0, "chance that an augmented view also gets burned-in text (clock time, kV code, side letter)"
    )
    cache_layer: str = _option("add_2", "frozen up to this layer (add_2 = end of the entry flow, block 4)")
    head_epochs: int = _option(20, "epochs for the logit alone on frozen pooled features")
    epochs: int = _option(5, "fine-tuning epochs")
    average_from: int = _option(2, "the served weights are the mean of those taken in epochs N..epochs")
    average_every: int = _option(
        10,
        "take the weights into the average every N fine-tuning batches from epoch average_from on, "
        "as SWAD does densely (0 = once per epoch, after it; an epoch of fewer batches: at its end)",
    )
    soup: int = _option(
        1,
        "fine-tuning runs from the one linear-probe start (seeds seed, seed+1, ...) whose weights are "
        "averaged into the served network (a model soup; 1 = one run)",
    )
    batch_size: int = _option(32, "fine-tuning batch size")
    learning_rate: float = _option(1e-4, "fine-tuning learning rate (Adam)")
    mixup: float = _option(
        0.0,
        "manifold mixup while fine-tuning: each cached feature map is mixed with another image's "
        "with a Beta(a, a) share and the loss is mixed alike (0 = none)",
    )
    ranking_weight: float = _option(
        0.0,
        "weight of a pairwise ranking loss on the pneumonia logit beside the cross-entropy: the mean "
        "softplus(normal - pneumonia logit) over the batch's normal/pneumonia pairs, a smooth "
        "surrogate of 1 - AUC (0 = none; not with mixup)",
    )
    batch_norm: str = _option(
        "frozen",
        "frozen: BatchNormalization keeps ImageNet's statistics and scales while fine-tuning "
        "(inference mode); trained: it normalises by each batch, learns its scales, and its running "
        "statistics follow the X-rays",
    )
    sam_rho: float = _option(
        0.0,
        "sharpness-aware minimisation while fine-tuning: the radius of the weight ball whose worst "
        "point's gradient each step applies (0 = plain Adam; SAM costs a second pass per batch)",
    )
    label_smoothing: float = _option(0.0, "binary label smoothing (0: it distorts the ranking of scores)")
    subtype_weight: float = _option(
        1.0,
        "weight of the viral-vs-bacterial loss beside the pneumonia loss (0: the viral logit is fitted "
        "only on frozen features, and fine-tuning serves the pneumonia task alone)",
    )
    threads: int = _option(0, "TensorFlow threads (0 = all cores)")
    threshold_policy: str = _option(
        "sensitivity", "sensitivity: highest specificity at --min-sensitivity; youden"
    )
    min_sensitivity: float = _option(0.95, "the sensitivity floor of the threshold policy")
    threshold_on: str = _option("external", "split the threshold is picked on: external | validation")
    threshold_quantile: float = _option(
        QUANTILE,
        "quantile of the patient-level bootstrap picks taken as the threshold (lower = safer sensitivity)",
    )
    calibrate_on: str = _option("external", "split the Platt scaling is fitted on: external | validation")
    bootstrap_rounds: int = _option(200, "patient-level bootstrap resamples for the threshold")
    mixings: str = _option(
        "0.5,0.7,0.85,1.0",
        "WiSE-FT candidates: the served weights are start + a * (fine-tuned - start) for the a among "
        "these with the best external AUC (1.0 = the fine-tuned weights)",
    )

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(
            input_size=self.input_size, clahe_clip=self.clahe_clip, corner_mask=self.corner_mask
        )

    def as_dict(self) -> dict[str, str | int | float]:
        """The options with paths relative to the repository, so a card names no machine's folders."""
        return {
            f.name: repo_relative(v) if isinstance(v := getattr(self, f.name), Path) else v
            for f in fields(self)
        }


def repo_relative(path: Path) -> str:
    """`path` relative to the repository (`../shared/data/...` for the data beside it)."""
    return os.path.relpath(Path(path).resolve(), REPO)


def config_from_dict(saved: dict) -> TrainConfig:
    """The TrainConfig that `as_dict` wrote (paths come back as Path, relative ones from the repository)."""

    def value(f):
        return (
            (REPO / saved[f.name]).resolve()
            if isinstance(f.default, Path)
            else type(f.default)(saved[f.name])
        )

    return TrainConfig(**{f.name: value(f) for f in fields(TrainConfig) if f.name in saved})


def add_train_options(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """Add `--option` for each field of TrainConfig (or only `names`), typed and documented by it."""
    for f in fields(TrainConfig):
        if names is None or f.name in names:
            parser.add_argument(
                f"--{f.name.replace('_', '-')}",
                type=type(f.default),
                default=f.default,
                help=f"{f.metadata['help']} (default: {f.default})",
            )


def config_from(args: argparse.Namespace, base: TrainConfig = TrainConfig()) -> TrainConfig:
    """The TrainConfig named by parsed options; options the parser did not define keep `base`'s values."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return replace(base, **given)
