"""Several trained members served as one model: one ONNX graph, one call, one Grad-CAM.

The members' last activations are concatenated along the channels, and the logit unit's kernel is
the members' kernels side by side divided by their number: the logit is then exactly the mean of
the members' logits, and the NumPy Grad-CAM on the concatenated activation is exactly the
GradientTape Grad-CAM of that mean. Serving needs nothing new; the gate is fitted on the merged
pooled features as on a single model's.

`python -m pneumoscan.training.ensemble NAME NAME...` scores the mean of experiments' saved
external logits (build/experiments/NAME/logits.npz) the way the experiment runner scores one.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from pneumoscan.metrics import pick_threshold, roc_auc
from pneumoscan.training.config import TrainConfig
from pneumoscan.training.experiment import EXPERIMENTS, MIN_SENSITIVITY, external_figures
from pneumoscan.training.pipeline import Trained, load_checkpoint
from pneumoscan.training.xception import LAST_CONV_LAYER, LOGIT_LAYER


def merge_members(models: list[keras.Model]) -> keras.Model:
    """One Keras model whose logit is the mean of the members' logits (same input, same head)."""
    image = keras.Input(shape=models[0].input.shape[1:], name="image")
    activations = [
        keras.Model(m.input, m.get_layer(LAST_CONV_LAYER).output, name=f"member_{i}")(image)
        for i, m in enumerate(models)
    ]
    joined = keras.layers.Concatenate(axis=-1, name=LAST_CONV_LAYER)(activations)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(joined)
    logit_layer = keras.layers.Dense(1, name=LOGIT_LAYER)
    merged = keras.Model(image, logit_layer(pooled), name="pneumoscan_xception_ensemble")
    kernels, biases = zip(*(m.get_layer(LOGIT_LAYER).get_weights() for m in models), strict=True)
    logit_layer.set_weights([np.concatenate(kernels, axis=0) / len(models), np.mean(biases, axis=0)])
    return merged


def member_folders(config: TrainConfig) -> list[Path]:
    return [Path(p) for p in config.ensemble_with.split(",") if p]


def add_members(trained: Trained, config: TrainConfig) -> Trained:
    """`trained` merged with the checkpoints named by `--ensemble-with` (none: unchanged).

    Members must share the patient split and the preprocessing: otherwise the validation figures
    would include images a member trained on, and the one image path would not hold."""
    others = [load_checkpoint(folder) for folder in member_folders(config)]
    for member, member_config in others:
        if member.split["val_fingerprint"] != trained.split["val_fingerprint"]:
            raise ValueError(
                f"{member_config.build_dir}: members must share the patient split (--split-seed)"
            )
        if member_config.preprocessing != config.preprocessing:
            raise ValueError(f"{member_config.build_dir}: members must share the preprocessing")
    if not others:
        return trained
    model = merge_members([trained.model, *(member.model for member, _ in others)])
    return replace(trained, model=model, seconds=trained.seconds + sum(m.seconds for m, _ in others))


def mean_of_experiments(names: list[str]) -> dict:
    """External figures of the mean logit of experiments (threshold from the mean validation logit)."""
    saved = [np.load(EXPERIMENTS / name / "logits.npz") for name in names]
    for other in saved[1:]:
        if not np.array_equal(other["val_labels"], saved[0]["val_labels"]):
            raise ValueError("experiments must share the patient split (--split-seed)")
    mean = {key: np.mean([s[key] for s in saved], axis=0) for key in ("val_logits", "external_logits")}
    val_labels, ext_labels = saved[0]["val_labels"], saved[0]["external_labels"]
    val_threshold = pick_threshold(val_labels, mean["val_logits"], "sensitivity", MIN_SENSITIVITY)
    return {
        "name": "+".join(names),
        "val_auc": roc_auc(val_labels, mean["val_logits"]),
        **external_figures(ext_labels, mean["external_logits"], val_threshold),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[-1])
    parser.add_argument("names", nargs="+", help="experiment names (build/experiments/NAME/)")
    result = mean_of_experiments(parser.parse_args(argv).names)
    with open(EXPERIMENTS.parent / "experiments.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
