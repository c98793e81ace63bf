"""ROC analysis and threshold policies against scikit-learn and by their definitions."""

import numpy as np
import pytest

from pneumoscan.metrics import bootstrap_thresholds, classification_report, pick_threshold, roc_auc

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture
def scores():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 600)
    return labels, 1 / (1 + np.exp(-(rng.normal(0, 1, 600) + 2.2 * labels - 1)))


def test_auc_matches_scikit_learn(scores):
    labels, probs = scores
    assert roc_auc(labels, probs) == pytest.approx(sklearn_metrics.roc_auc_score(labels, probs), abs=1e-12)


def test_sensitivity_policy_meets_its_floor_with_the_best_specificity(scores):
    labels, probs = scores
    threshold = pick_threshold(labels, probs, "sensitivity", 0.95)
    report = classification_report(labels, probs, threshold)
    assert report["sensitivity"] >= 0.95
    fpr, tpr, _ = sklearn_metrics.roc_curve(labels, probs)
    assert report["specificity"] == pytest.approx(1 - fpr[tpr >= 0.95].min(), abs=1e-12)


def test_youden_policy_maximises_tpr_minus_fpr(scores):
    labels, probs = scores
    report = classification_report(labels, probs, pick_threshold(labels, probs, "youden"))
    fpr, tpr, _ = sklearn_metrics.roc_curve(labels, probs)
    assert report["sensitivity"] + report["specificity"] - 1 == pytest.approx((tpr - fpr).max(), abs=1e-12)


def test_bootstrap_thresholds_are_reproducible_and_centred_on_the_plain_pick(scores):
    labels, probs = scores
    groups = np.arange(len(labels)) // 2
    first = bootstrap_thresholds(labels, probs, groups, "sensitivity", 0.95, rounds=50, seed=1)
    assert np.array_equal(
        first, bootstrap_thresholds(labels, probs, groups, "sensitivity", 0.95, rounds=50, seed=1)
    )
    assert abs(np.median(first) - pick_threshold(labels, probs, "sensitivity", 0.95)) < 0.1
    assert np.quantile(first, 0.1) <= np.median(first) and len(first) == 50


def test_report_counts_and_rates():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    probs = np.array([0.1, 0.6, 0.2, 0.9, 0.8, 0.4, 0.7])
    report = classification_report(labels, probs, 0.5)
    assert report["confusion_matrix"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 3}
    assert report["sensitivity"] == pytest.approx(0.75)
    assert report["specificity"] == pytest.approx(2 / 3)
    assert report["accuracy"] == pytest.approx(5 / 7)
    assert report["brier"] == pytest.approx(np.mean((probs - labels) ** 2))
