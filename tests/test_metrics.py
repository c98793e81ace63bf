"""ROC analysis and threshold policies against scikit-learn and by their definitions."""

import numpy as np
import pytest

from pneumoscan.metrics import (
    bootstrap_auc_interval,
    bootstrap_thresholds,
    classification_report,
    paired_auc_difference,
    pick_threshold,
    roc_auc,
)

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


def test_wilson_interval_matches_reference_values():
    from pneumoscan.metrics import wilson_interval

    # statsmodels.stats.proportion.proportion_confint(k, n, method="wilson") gives these.
    assert wilson_interval(8, 10) == pytest.approx((0.4901624715, 0.9433178485), abs=1e-9)
    assert wilson_interval(47, 50) == pytest.approx((0.8378290831, 0.9793850297), abs=1e-9)
    assert wilson_interval(0, 25) == pytest.approx((0.0, 0.1331922509), abs=1e-9)
    assert wilson_interval(25, 25) == pytest.approx((0.8668077491, 1.0), abs=1e-9)
    assert wilson_interval(0, 0) is None


def test_rates_and_confusion_match_scikit_learn(scores):
    from pneumoscan.metrics import confusion_counts, rates_with_intervals, wilson_interval

    labels, probs = scores
    thresholds = np.where(np.arange(labels.size) % 2, 0.4, 0.6)  # each case its own threshold
    predicted = probs >= thresholds
    confusion = confusion_counts(labels, predicted)
    tn, fp, fn, tp = sklearn_metrics.confusion_matrix(labels, predicted).ravel()
    assert confusion == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    rates = rates_with_intervals(confusion)
    assert rates["sensitivity"]["value"] == pytest.approx(sklearn_metrics.recall_score(labels, predicted))
    assert rates["specificity"]["value"] == pytest.approx(
        sklearn_metrics.recall_score(labels, predicted, pos_label=0)
    )
    assert rates["ppv"]["value"] == pytest.approx(sklearn_metrics.precision_score(labels, predicted))
    assert rates["npv"]["value"] == pytest.approx(
        sklearn_metrics.precision_score(labels, predicted, pos_label=0)
    )
    assert rates["sensitivity"]["cases"] == labels.sum()
    assert rates["npv"]["cases"] == (~predicted).sum()
    assert rates["ppv"]["interval_95"] == list(wilson_interval(tp, tp + fp))


def test_roc_curve_matches_scikit_learn(scores):
    from pneumoscan.metrics import roc_curve

    labels, probs = scores
    fpr, tpr, thresholds = roc_curve(labels, probs)
    ref_fpr, ref_tpr, ref_thresholds = sklearn_metrics.roc_curve(labels, probs, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thresholds[1:], ref_thresholds[1:])


def test_bootstrap_auc_interval_is_reproducible_and_holds_the_auc(scores):
    from pneumoscan.metrics import bootstrap_auc_interval

    labels, probs = scores
    low, high = bootstrap_auc_interval(labels, probs, rounds=300, seed=1)
    assert low < sklearn_metrics.roc_auc_score(labels, probs) < high
    assert high - low < 0.1
    assert bootstrap_auc_interval(labels, probs, rounds=300, seed=1) == (low, high)
    small = bootstrap_auc_interval(labels[:40], probs[:40], rounds=300, seed=1)
    assert small[1] - small[0] > high - low
    assert bootstrap_auc_interval(np.ones(5), probs[:5]) is None


def test_paired_auc_difference_is_tighter_than_either_auc_alone(scores):
    labels, first = scores
    second = first + np.random.default_rng(5).normal(0, 0.05, first.size)
    result = paired_auc_difference(labels, first, second, rounds=500)
    low, high = bootstrap_auc_interval(labels, first, rounds=500)

    assert result["difference"] == pytest.approx(roc_auc(labels, second) - roc_auc(labels, first))
    assert result["interval_95"][0] <= result["difference"] <= result["interval_95"][1]
    assert result["interval_95"][1] - result["interval_95"][0] < high - low
    assert paired_auc_difference(labels, first, first, rounds=50)["standard_error"] == 0.0
