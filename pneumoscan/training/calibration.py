"""Platt scaling of the logit, and an honest (cross-validated) estimate of what it achieves.

The served probability is sigmoid(scale * logit + bias) (`inference` applies it); fitting the
two numbers on a labelled set from another collection than the training folder is what makes
probabilities mean what they say off the training distribution.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from pneumoscan.inference import sigmoid
from pneumoscan.metrics import expected_calibration_error


def fit_platt(labels: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """(scale, bias) minimising the log-loss of sigmoid(scale * logit + bias); nearly unregularised."""
    fitted = LogisticRegression(C=1e4).fit(logits.reshape(-1, 1), labels)
    return float(fitted.coef_[0, 0]), float(fitted.intercept_[0])


def cross_validated_ece(labels: np.ndarray, logits: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """ECE of Platt scaling fitted on the other folds: what a fit on this set does on new images."""
    probabilities = np.empty(len(labels))
    for fit_rows, test_rows in StratifiedKFold(folds, shuffle=True, random_state=seed).split(logits, labels):
        scale, bias = fit_platt(labels[fit_rows], logits[fit_rows])
        probabilities[test_rows] = sigmoid(scale * logits[test_rows] + bias)
    return expected_calibration_error(labels, probabilities)
