"""Re-pick the stored threshold from a labelled folder without retraining (`python -m pneumoscan
threshold`): score the folder through the served path (calibration included, no non-X-ray gate),
pick by the threshold policy, and record in the card the new threshold, how it was picked and on what.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from pneumoscan.batch import estimate_files
from pneumoscan.dataset import LabelledImage
from pneumoscan.inference import Predictor
from pneumoscan.metrics import classification_report
from pneumoscan.threshold import describe_policy, pick_threshold_with_interval

REPORT_KEY = "threshold_report"


def repick(
    model_dir: Path,
    items: list[LabelledImage],
    source: str,
    policy: str,
    min_sensitivity: float,
    quantile: float,
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
    threshold, interval = pick_threshold_with_interval(
        labels, scores, groups, policy, min_sensitivity, quantile, seed
    )
    old = classification_report(labels, scores, predictor.card.threshold)
    new = classification_report(labels, scores, threshold)
    card = replace(
        predictor.card,
        threshold=threshold,
        threshold_policy=describe_policy(
            policy, min_sensitivity, source, interval["bootstrap_rounds"], quantile
        ),
        extra={**predictor.card.extra, REPORT_KEY: {"source": source, **interval, **new}},
    )
    card.write(model_dir)
    return old, new
