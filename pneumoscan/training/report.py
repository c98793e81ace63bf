"""The report pictures: ROC curve, confusion matrix, calibration curve, training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumoscan.dataset import CLASS_NAMES
from pneumoscan.metrics import calibration_bins, classification_report, roc_auc, roc_curve


def write_report(
    folder: Path, labels: np.ndarray, probs: np.ndarray, threshold: float, history: dict
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    report = classification_report(labels, probs, threshold)

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    fpr, tpr, _ = roc_curve(labels, probs)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc(labels, probs):.4f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.scatter(
        [1 - report["specificity"]],
        [report["sensitivity"]],
        color="red",
        zorder=3,
        label=f"threshold {threshold:.3f}",
    )
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC, validation split")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "roc.png", dpi=100)
    plt.close(fig)

    matrix = report["confusion_matrix"]
    cells = np.array([[matrix["tn"], matrix["fp"]], [matrix["fn"], matrix["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(cells, cmap="Blues")
    for (row, col), value in np.ndenumerate(cells):
        ax.text(col, row, str(value), ha="center", va="center", color="black", fontsize=14)
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=CLASS_NAMES,
        yticklabels=CLASS_NAMES,
        xlabel="predicted",
        ylabel="true",
        title="Confusion matrix, validation",
    )
    fig.tight_layout()
    fig.savefig(folder / "confusion_matrix.png", dpi=100)
    plt.close(fig)

    bins = calibration_bins(labels, probs)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.plot([mean for _, mean, _ in bins], [observed for _, _, observed in bins], "o-")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="fraction with pneumonia",
        title=f"Calibration (ECE {report['ece']:.3f})",
    )
    fig.tight_layout()
    fig.savefig(folder / "calibration.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    for ax, key in zip(axes, ("loss", "auc"), strict=False):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], "o-", label="train")
            ax.plot(range(1, len(history[f"val_{key}"]) + 1), history[f"val_{key}"], "o-", label="validation")
        ax.set(xlabel="fine-tuning epoch", ylabel=key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "training_curves.png", dpi=100)
    plt.close(fig)
