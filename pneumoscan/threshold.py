"""The threshold policy: pick the threshold by ROC analysis with a bootstrap interval, for
publishing, the site threshold and re-picking (`pneumoscan.repick`).

The policy's threshold is picked on each of many patient-level bootstrap resamples; a quantile
of those picks is stored (the median is the typical pick; a low quantile keeps the sensitivity
floor on new data more often).
"""

from __future__ import annotations

import numpy as np

from pneumoscan.metrics import bootstrap_thresholds

POLICIES = ("sensitivity", "youden")
BOOTSTRAP_ROUNDS = 200
# The quantile of the picks stored, for publishing and re-picking alike: the 0.1 quantile of the
# sensitivity policy fell, for the committed model, where a threshold three times lower bought
# 0.005 sensitivity for 0.07 specificity.
QUANTILE = 0.25


def describe_policy(policy: str, min_sensitivity: float, source: str, rounds: int, quantile: float) -> str:
    picked = (
        f"highest specificity with sensitivity >= {min_sensitivity}"
        if policy == "sensitivity"
        else "maximum of Youden's J (sensitivity + specificity - 1)"
    )
    return f"{picked}, quantile {quantile} of {rounds} patient-level bootstrap picks, on {source}"


def pick_threshold_with_interval(
    labels: np.ndarray,
    probabilities: np.ndarray,
    groups: np.ndarray,
    policy: str,
    min_sensitivity: float,
    quantile: float,
    seed: int,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> tuple[float, dict]:
    """The stored threshold (a quantile of the bootstrap picks) and how the picks spread."""
    picks = bootstrap_thresholds(labels, probabilities, groups, policy, min_sensitivity, rounds, seed)
    return float(np.quantile(picks, quantile)), {
        "bootstrap_rounds": len(picks),
        "quantile_taken": quantile,
        "median": float(np.median(picks)),
        "interval_90": [float(np.quantile(picks, 0.05)), float(np.quantile(picks, 0.95))],
    }
