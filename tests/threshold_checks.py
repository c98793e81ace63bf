"""Checks shared by the site-threshold tests: the policy's threshold computed independently, with
scikit-learn, and the proposal read back from the page."""

from __future__ import annotations

import re

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def policy_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Highest specificity with sensitivity >= 0.95, from scikit-learn's ROC curve: the midpoint
    between the chosen score and the next lower one (as the model card's threshold is picked)."""
    fpr, tpr, thresholds = sklearn_metrics.roc_curve(labels, probabilities, drop_intermediate=False)
    chosen = thresholds[np.flatnonzero(tpr >= 0.95)[0]]
    below = probabilities[probabilities < chosen]
    return float((chosen + (below.max() if below.size else 0.0)) / 2)


def proposed_value(page: str) -> str:
    match = re.search(r'name="threshold" value="([^"]+)"', page)
    assert match, "no proposal on the page"
    return match.group(1)
