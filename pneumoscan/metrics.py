"""ROC analysis, threshold policies and the model card's metrics, in NumPy only."""

from __future__ import annotations

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and the thresholds (score >= t is positive)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order].astype(bool)
    distinct = np.r_[np.where(np.diff(scores))[0], labels.size - 1]
    tps = np.cumsum(labels)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / max(labels.sum(), 1)]
    fpr = np.r_[0.0, fps / max((~labels).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, scores[distinct]]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.trapezoid(tpr, fpr))


def pick_threshold(
    labels: np.ndarray, scores: np.ndarray, policy: str, min_sensitivity: float = 0.95
) -> float:
    """`sensitivity`: highest specificity whose sensitivity >= min_sensitivity; `youden`: max TPR - FPR.

    The threshold is the midpoint between the chosen score and the next lower one, so it does
    not sit exactly on a validation image.
    """
    fpr, tpr, thresholds = roc_curve(labels, scores)
    if policy == "youden":
        index = int(np.argmax(tpr - fpr))
    elif policy == "sensitivity":
        index = int(np.argmax(tpr >= min_sensitivity))
    else:
        raise ValueError(f"unknown threshold policy {policy!r}")
    below = scores[scores < thresholds[index]]
    lower = float(below.max()) if below.size else 0.0
    return float((thresholds[index] + lower) / 2)


def bootstrap_thresholds(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    policy: str,
    min_sensitivity: float,
    rounds: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """The policy's threshold on each of `rounds` patient-level bootstrap resamples: how far
    the pick moves with the sample."""
    rng = np.random.default_rng(seed)
    unique = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in unique}
    picks = []
    for _ in range(rounds):
        chosen = np.concatenate([members[g] for g in rng.choice(unique, size=unique.size)])
        if labels[chosen].min() == labels[chosen].max():
            continue
        picks.append(pick_threshold(labels[chosen], scores[chosen], policy, min_sensitivity))
    return np.array(picks)


def calibration_bins(
    labels: np.ndarray, probs: np.ndarray, bins: int = 10
) -> list[tuple[float, float, float]]:
    """(share of images, mean probability, observed positive rate) of each non-empty equal-width bin."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    return [
        (float((index == b).mean()), float(probs[index == b].mean()), float(labels[index == b].mean()))
        for b in range(bins)
        if (index == b).any()
    ]


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    return float(
        sum(share * abs(mean - observed) for share, mean, observed in calibration_bins(labels, probs, bins))
    )


def confusion_counts(labels: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    """{tn, fp, fn, tp} of truths (1 = positive) against calls (True = positive)."""
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    return {
        "tn": int((~predicted & ~labels).sum()),
        "fp": int((predicted & ~labels).sum()),
        "fn": int((~predicted & labels).sum()),
        "tp": int((predicted & labels).sum()),
    }


def classification_report(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict:
    """The model card's numbers at one threshold."""
    labels = labels.astype(int)
    confusion = confusion_counts(labels, probs >= threshold)
    tp, tn, fp, fn = (confusion[key] for key in ("tp", "tn", "fp", "fn"))
    sensitivity = tp / max(tp + fn, 1)
    precision = tp / max(tp + fp, 1)
    return {
        "n": int(labels.size),
        "auc": roc_auc(labels, probs),
        "accuracy": (tp + tn) / max(labels.size, 1),
        "sensitivity": sensitivity,
        "specificity": tn / max(tn + fp, 1),
        "precision": precision,
        "f1": 2 * precision * sensitivity / max(precision + sensitivity, 1e-12),
        "brier": float(np.mean((probs - labels) ** 2)),
        "ece": expected_calibration_error(labels, probs),
        "confusion_matrix": confusion,
        "threshold": float(threshold),
    }


Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (95 % by default); None without cases. Unlike the
    normal approximation it stays inside [0, 1] and is sensible for small n and rates near 0 or 1."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def bootstrap_auc_interval(
    labels: np.ndarray, scores: np.ndarray, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile interval of the AUC over case-level bootstrap resamples (fixed seed, so a page
    shows the same interval every time); resamples with one class only are skipped. None unless
    both classes are present."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.size == 0 or labels.min() == labels.max():
        return None
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        chosen = rng.integers(0, labels.size, labels.size)
        if labels[chosen].min() != labels[chosen].max():
            aucs.append(roc_auc(labels[chosen], scores[chosen]))
    tail = (1 - level) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


def paired_auc_difference(
    labels: np.ndarray, first: np.ndarray, second: np.ndarray, rounds: int = 2000, seed: int = 0
) -> dict[str, float | list[float]]:
    """AUC of `second` minus AUC of `first` on the same cases, with the standard error and 95%
    percentile interval over case-level bootstrap resamples drawn once for both: two designs
    compared on one small set share its luck, so their difference is known far better than
    either AUC alone."""
    labels = np.asarray(labels).astype(int)
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(rounds):
        chosen = rng.integers(0, labels.size, labels.size)
        if labels[chosen].min() != labels[chosen].max():
            differences.append(
                roc_auc(labels[chosen], second[chosen]) - roc_auc(labels[chosen], first[chosen])
            )
    return {
        "difference": roc_auc(labels, second) - roc_auc(labels, first),
        "standard_error": float(np.std(differences)),
        "interval_95": [float(np.quantile(differences, 0.025)), float(np.quantile(differences, 0.975))],
    }


def rates_with_intervals(confusion: dict[str, int]) -> dict[str, dict]:
    """Sensitivity, specificity, PPV and NPV from a confusion matrix, each with its count of
    cases behind it and a 95 % Wilson interval (None when no case is behind it)."""
    tp, tn, fp, fn = (confusion[key] for key in ("tp", "tn", "fp", "fn"))
    parts = {
        "sensitivity": (tp, tp + fn),
        "specificity": (tn, tn + fp),
        "ppv": (tp, tp + fp),
        "npv": (tn, tn + fn),
    }
    return {
        name: {
            "value": hits / n if n else None,
            "cases": n,
            "interval_95": list(interval) if (interval := wilson_interval(hits, n)) else None,
        }
        for name, (hits, n) in parts.items()
    }
