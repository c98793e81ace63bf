"""Re-pick the stored threshold from a labelled folder, without retraining.

The folder's images go through the served path (calibration included, no non-X-ray gate),
and the threshold is picked as publishing picks it: the policy's median over patient-level
bootstrap resamples. The card then records the new threshold, how it was picked and on what.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from pneumoscan.batch import estimate_files
from pneumoscan.dataset import LabelledImage, list_labelled_images, split_by_patient, training_folder
from pneumoscan.inference import Predictor
from pneumoscan.metrics import bootstrap_threshold, classification_report
from pneumoscan.model_card import ModelCard

POLICIES = ("sensitivity", "youden")
BOOTSTRAP_ROUNDS = 200
REPORT_KEY = "threshold_report"


def validation_split(card: ModelCard) -> tuple[list[LabelledImage], str]:
    """The validation images the card's model was published with, rebuilt from its recorded
    split, and words that name them."""
    split = card.extra.get("split", {})
    if "seed" not in split or "val_fraction" not in split:
        raise ValueError("the model card records no split (seed, val_fraction); name a folder with --on")
    folder = training_folder()
    _, val = split_by_patient(list_labelled_images(folder), split["val_fraction"], split["seed"])
    return (
        val,
        f"the validation split (seed {split['seed']}, {split['val_fraction']:.0%} of patients) of {folder}",
    )


def describe_policy(policy: str, min_sensitivity: float, source: str) -> str:
    picked = (
        f"highest specificity with sensitivity >= {min_sensitivity}"
        if policy == "sensitivity"
        else "maximum of Youden's J (sensitivity + specificity - 1)"
    )
    return f"{picked} (median of {BOOTSTRAP_ROUNDS} patient-level bootstrap picks) on {source}"


def repick(
    model_dir: Path,
    items: list[LabelledImage],
    source: str,
    policy: str,
    min_sensitivity: float,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict, dict]:
    """Score `items`, store the threshold the policy picks on them in the card; returns the
    classification reports at the old and the new threshold. `progress(done, total)` is called
    after each image."""
    predictor = Predictor.load(model_dir)
    results = []
    for result in estimate_files(predictor, [item.path for item in items], check_xray=False):
        results.append(result)
        if progress:
            progress(len(results), len(items))
    failed = [f"{result.path}: {result.error}" for result in results if result.estimate is None]
    if failed:
        raise ValueError(f"{len(failed)} images could not be scored, for example {failed[0]}")
    labels = np.array([item.label for item in items])
    scores = np.array([result.estimate.probability for result in results])
    groups = np.array([item.patient for item in items])
    threshold = bootstrap_threshold(
        labels, scores, groups, policy, min_sensitivity, rounds=BOOTSTRAP_ROUNDS, seed=seed
    )
    old = classification_report(labels, scores, predictor.card.threshold)
    new = classification_report(labels, scores, threshold)
    card = replace(
        predictor.card,
        threshold=threshold,
        threshold_policy=describe_policy(policy, min_sensitivity, source),
        extra={**predictor.card.extra, REPORT_KEY: {"source": source, **new}},
    )
    card.write(model_dir)
    return old, new
