"""`python -m pneumoscan.training.experiment NAME [training options]`: train one variant and
measure it where designs differ.

Validation AUC is 0.99+ for almost any design; the external set (another collection of the same
kind of X-rays) is where they part. Printed and appended to build/experiments.jsonl: validation
AUC, external AUC, external specificity at the ROC policy's point (sensitivity >= 0.95), external
sensitivity and specificity at the threshold picked on validation, ECE raw and after Platt
scaling (cross-validated on the external set), and training minutes. The checkpoint and the
logits stay in build/experiments/NAME/ for publishing
(`python -m pneumoscan.training.publish --build-dir build/experiments/NAME`). The viral logit's
AUC among pneumonia images is printed too.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from pneumoscan.dataset import LabelledImage, list_labelled_images
from pneumoscan.inference import sigmoid
from pneumoscan.metrics import classification_report, expected_calibration_error, pick_threshold, roc_auc
from pneumoscan.training.calibration import cross_validated_ece
from pneumoscan.training.config import EXPERIMENTS, TrainConfig, add_train_options, config_from
from pneumoscan.training.pipeline import Trained, train
from pneumoscan.training.served_files import load_pixels, model_inputs
from pneumoscan.training.xception import PNEUMONIA, VIRAL

MIN_SENSITIVITY = 0.95


def keras_logits(model, pixels: np.ndarray, config: TrainConfig) -> np.ndarray:
    """(N, 2): the pneumonia and viral logits."""
    return model.predict(model_inputs(pixels, config.preprocessing), batch_size=64, verbose=0)


def viral_auc(items: list[LabelledImage], logits: np.ndarray) -> float:
    """How the viral logit ranks viral above bacterial among the pneumonia images."""
    pneumonia = np.array([i.label == 1 for i in items])
    return roc_auc(np.array([i.viral for i in items])[pneumonia], logits[pneumonia, VIRAL])


def external_figures(labels: np.ndarray, logits: np.ndarray, val_threshold_logit: float) -> dict:
    """The figures that tell designs apart, from logits on the external set."""
    policy_threshold = pick_threshold(labels, logits, "sensitivity", MIN_SENSITIVITY)
    at_policy = classification_report(labels, logits, policy_threshold)
    at_val = classification_report(labels, logits, val_threshold_logit)
    return {
        "auc": roc_auc(labels, logits),
        "specificity_at_sensitivity_095": at_policy["specificity"],
        "sensitivity_at_val_threshold": at_val["sensitivity"],
        "specificity_at_val_threshold": at_val["specificity"],
        "ece_raw": expected_calibration_error(labels, sigmoid(logits)),
        "ece_platt_cv": cross_validated_ece(labels, logits),
    }


def evaluate(trained: Trained, config: TrainConfig) -> tuple[dict, dict[str, np.ndarray]]:
    external = list_labelled_images(config.external_dev)
    val_labels = np.array([i.label for i in trained.val])
    ext_labels = np.array([i.label for i in external])
    val_both = keras_logits(trained.model, load_pixels(trained.val), config)
    ext_both = keras_logits(trained.model, load_pixels(external), config)
    val_logits, ext_logits = val_both[:, PNEUMONIA], ext_both[:, PNEUMONIA]
    val_threshold = pick_threshold(val_labels, val_logits, "sensitivity", MIN_SENSITIVITY)
    figures = {
        "val_auc": roc_auc(val_labels, val_logits),
        **external_figures(ext_labels, ext_logits, val_threshold),
        "val_viral_auc": viral_auc(trained.val, val_both),
        "external_viral_auc": viral_auc(external, ext_both),
    }
    return figures, {
        "val_logits": val_logits,
        "val_labels": val_labels,
        "external_logits": ext_logits,
        "external_labels": ext_labels,
        "val_viral_logits": val_both[:, VIRAL],
        "external_viral_logits": ext_both[:, VIRAL],
    }


def run(name: str, config: TrainConfig) -> dict:
    folder = EXPERIMENTS / name
    config = replace(config, build_dir=folder)
    trained = train(config)
    figures, arrays = evaluate(trained, config)
    result = {
        "name": name,
        **figures,
        "train_minutes": trained.seconds / 60,
        "epochs_run": len(trained.history.get("loss", [])),
        "config": config.as_dict(),
    }
    np.savez(folder / "logits.npz", **arrays)
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    with open(EXPERIMENTS.parent / "experiments.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(result) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=1))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="experiment name: build/experiments/NAME/")
    add_train_options(parser)
    args = parser.parse_args(argv)
    run(args.name, config_from(args))


if __name__ == "__main__":
    main()
