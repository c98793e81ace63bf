"""From a trained Keras model to what serving needs: ONNX model, head + gate arrays, model card.

One step a function, each done once: export float32 ONNX with two outputs (logit, last
activation); score the validation split and the external set through the serving path; keep the
lightest weight format (int8, float16) whose AUC on both stays within 0.002 of float32; fit Platt
scaling; pick the threshold by ROC with a bootstrap interval; fit the non-X-ray gate on the
shipped model's features; check NumPy Grad-CAM against a GradientTape one; score the external set
under each corruption family (`robustness.py`); write the card once; measure the drift reference
on the validation split.
`python -m pneumoscan.training.publish` re-runs it on the checkpoint in build/ without training.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import keras
import numpy as np
import onnxruntime
import PIL
import tensorflow as tf

from pneumoscan.dataset import LabelledImage, list_labelled_images
from pneumoscan.drift import write_reference
from pneumoscan.gradcam import gradcam
from pneumoscan.inference import Predictor, run_model, sigmoid
from pneumoscan.metrics import classification_report, roc_auc
from pneumoscan.model_card import CLASS_NAMES, POSITIVE_CLASS, Calibration, ModelCard
from pneumoscan.threshold import describe_policy, pick_threshold_with_interval
from pneumoscan.training.calibration import cross_validated_ece, fit_platt
from pneumoscan.training.config import TrainConfig, add_train_options, config_from
from pneumoscan.training.drift_reference import measure_reference
from pneumoscan.training.ensemble import add_members, member_folders
from pneumoscan.training.fit_gate import evaluate_gate, fit_gate_for
from pneumoscan.training.onnx_variants import export_onnx, quantize_int8, store_float16
from pneumoscan.training.pipeline import Trained, load_checkpoint
from pneumoscan.training.report import write_report
from pneumoscan.training.robustness import robustness_report
from pneumoscan.training.served_files import load_pixels, model_inputs, served_outputs
from pneumoscan.training.xception import LAST_CONV_LAYER, LOGIT_LAYER, first_trained_block, submodel_from

MODEL_FILE = "pneumoscan.onnx"
HEAD_FILE = "head_and_gate.npz"
MAX_AUC_DROP = 0.002
CALIBRATION_IMAGES = 200
INTENDED_USE = (
    "A second-opinion aid that flags frontal chest radiographs that look like pneumonia, for a "
    "clinician who reads the image. Not a diagnostic device; not cleared for clinical use."
)
LIMITS = [
    "Trained on anterior-posterior chest X-rays of children aged one to five from one hospital "
    "(Guangzhou Women and Children's Medical Center); adults, other views and other hospitals are "
    "outside what it was trained on.",
    "Two classes only (NORMAL, PNEUMONIA); other findings are not detected and may be called either.",
    "Validation figures come from a patient-level split of the training folder and overstate "
    "performance on new data; the external figures (half of the Kermany test split, also used to "
    "choose the design, the calibration and the threshold) are the more honest ones.",
]


@dataclass(frozen=True)
class LabelledSet:
    """A labelled folder's images as the serving path sees them, with patient groups."""

    name: str
    labels: np.ndarray
    groups: np.ndarray
    pixels: np.ndarray

    @classmethod
    def of(cls, name: str, items: list[LabelledImage]) -> LabelledSet:
        return cls(
            name, np.array([i.label for i in items]), np.array([i.patient for i in items]), load_pixels(items)
        )


def choose_weights(
    build: Path, fp32: Path, calibration: np.ndarray, sets: list[LabelledSet], config: TrainConfig
) -> tuple[Path, dict[str, np.ndarray], dict]:
    """The lightest format whose AUC on every set stays within MAX_AUC_DROP of float32, with its logits."""
    reference = {s.name: served_outputs(fp32, s.pixels, config.preprocessing)[0] for s in sets}
    checks: dict = {
        "float32": {
            "size_mb": fp32.stat().st_size / 2**20,
            **{f"{s.name}_auc": roc_auc(s.labels, reference[s.name]) for s in sets},
        }
    }
    makers = {
        "int8": lambda path: quantize_int8(fp32, path, calibration),
        "float16": lambda path: store_float16(fp32, path),
    }
    for name, make in makers.items():
        path = build / f"model_{name}.onnx"
        make(path)
        logits = {s.name: served_outputs(path, s.pixels, config.preprocessing)[0] for s in sets}
        drops = {
            s.name: roc_auc(s.labels, reference[s.name]) - roc_auc(s.labels, logits[s.name]) for s in sets
        }
        accepted = all(drop <= MAX_AUC_DROP for drop in drops.values())
        checks[name] = {
            "size_mb": path.stat().st_size / 2**20,
            "accepted": accepted,
            **{f"{k}_auc_drop": v for k, v in drops.items()},
            "max_abs_logit_change": max(float(np.abs(logits[k] - reference[k]).max()) for k in logits),
        }
        print(f"{name}: {checks[name]}")
        if accepted:
            checks["shipped"] = name
            return path, logits, checks
    checks["shipped"] = "float32"
    return fp32, reference, checks


def calibrate(chosen: LabelledSet, logits: np.ndarray) -> tuple[Calibration, dict]:
    """Platt scaling fitted on one set, with its cross-validated ECE there (what a fit does on new images)."""
    scale, bias = fit_platt(chosen.labels, logits)
    return Calibration(method=f"platt, fitted on {chosen.name}", scale=scale, bias=bias), {
        "fitted_on": chosen.name,
        "images": len(chosen.labels),
        "ece_before": classification_report(chosen.labels, sigmoid(logits), 0.5)["ece"],
        "ece_cross_validated_5_fold": cross_validated_ece(chosen.labels, logits),
    }


def choose_threshold(
    chosen: LabelledSet, probabilities: np.ndarray, config: TrainConfig
) -> tuple[float, dict]:
    """The ROC policy's threshold with its patient-level bootstrap interval, on the chosen set."""
    threshold, interval = pick_threshold_with_interval(
        chosen.labels,
        probabilities,
        chosen.groups,
        config.threshold_policy,
        config.min_sensitivity,
        config.threshold_quantile,
        config.seed,
        config.bootstrap_rounds,
    )
    source = f"the {chosen.name} set"
    description = describe_policy(
        config.threshold_policy,
        config.min_sensitivity,
        source,
        interval["bootstrap_rounds"],
        config.threshold_quantile,
    )
    return threshold, {"picked_on": chosen.name, "description": description, **interval}


def tape_gradcam(model, x: np.ndarray) -> np.ndarray:
    """keras-io's GradientTape Grad-CAM of one model input on the float32 Keras model. The tape
    watches the last activation and runs the head after it (a nested-model ensemble loses the
    gradient path when both are outputs of one model)."""
    activation = keras.Model(model.input, model.get_layer(LAST_CONV_LAYER).output)(tf.constant(x[None]))
    head = submodel_from(model, LAST_CONV_LAYER)
    with tf.GradientTape() as tape:
        tape.watch(activation)
        pneumonia = head(activation)[:, 0]
    grads = tape.gradient(pneumonia, activation)
    heat = tf.nn.relu(activation[0] @ tf.reduce_mean(grads, axis=(0, 1, 2))[:, None])[:, :, 0]
    peak = float(tf.reduce_max(heat))
    return (heat / peak if peak > 0 else heat).numpy()


def gradcam_check(model, predictor: Predictor, inputs: np.ndarray) -> dict:
    """The served Grad-CAM (NumPy, on the shipped model's activation) against the GradientTape
    Grad-CAM on the float32 Keras model: the whole difference, weights format included."""
    differences = []
    for x in inputs:
        _, served = run_model(predictor.session, x[None])
        differences.append(np.abs(gradcam(served[0], predictor.dense_kernel) - tape_gradcam(model, x)))
    return {
        "images": len(differences),
        "max_abs_diff": float(np.max(differences)),
        "mean_abs_diff": float(np.mean(differences)),
        "median_of_per_image_max": float(np.median([d.max() for d in differences])),
    }


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
    }


def publish(trained: Trained, config: TrainConfig) -> ModelCard:
    """Export `trained` (merged with the --ensemble-with members, if any) and write the card."""
    trained = add_members(trained, config)
    build, out = config.build_dir, config.out
    build.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = build / "model_float32.onnx"
    export_onnx(trained.model, fp32)

    sets = {
        "validation": LabelledSet.of("validation", trained.val),
        "external": LabelledSet.of("external", list_labelled_images(config.external_dev)),
    }
    rng = np.random.default_rng(config.seed)
    picked = rng.choice(len(trained.train), min(CALIBRATION_IMAGES, len(trained.train)), replace=False)
    calibration_inputs = model_inputs(load_pixels([trained.train[i] for i in picked]), config.preprocessing)
    shipped, logits, variants = choose_weights(build, fp32, calibration_inputs, list(sets.values()), config)

    platt, calibration_report = calibrate(sets[config.calibrate_on], logits[config.calibrate_on])
    probabilities = {name: sigmoid(platt.scale * value + platt.bias) for name, value in logits.items()}
    threshold, threshold_report = choose_threshold(
        sets[config.threshold_on], probabilities[config.threshold_on], config
    )

    shutil.copyfile(shipped, out / MODEL_FILE)
    kernel, bias = trained.model.get_layer(LOGIT_LAYER).get_weights()
    gate, gate_fit = fit_gate_for(out / MODEL_FILE, config.preprocessing, trained.train, config.seed)
    np.savez(
        out / HEAD_FILE,
        dense_kernel=kernel.reshape(-1).astype(np.float32),
        dense_bias=bias.astype(np.float32),
        **gate.arrays(),
    )
    digest = hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
    block = first_trained_block(config.cache_layer)
    members = 1 + len(member_folders(config))
    ensemble = f"; the mean of {members} such members' logits (seeds differ)" if members > 1 else ""
    card = ModelCard(
        model_version=f"xception-{dt.date.today():%Y%m%d}-{digest[:8]}",
        model_file=MODEL_FILE,
        model_sha256=digest,
        head_file=HEAD_FILE,
        class_names=CLASS_NAMES,
        positive_class=POSITIVE_CLASS,
        threshold=threshold,
        threshold_policy=threshold_report["description"],
        preprocessing=config.preprocessing,
        calibration=platt,
    )
    predictor = Predictor(out, card=card)
    card = replace(
        card,
        extra={
            "architecture": f"Xception (ImageNet) at {config.input_size} px, blocks {block}-14 fine-tuned; "
            f"global average pooling, dropout, one logit{ensemble}",
            "runtime": "onnxruntime",
            "weights_format": variants["shipped"],
            "input_size": [config.input_size, config.input_size, 3],
            "preprocessing": config.preprocessing.describe(),
            "threshold_choice": threshold_report,
            "calibration_choice": calibration_report,
            **{
                name: classification_report(s.labels, probabilities[name], threshold)
                for name, s in sets.items()
            },
            "weight_variants": variants,
            "gradcam_vs_float32_gradienttape": gradcam_check(
                trained.model,
                predictor,
                model_inputs(sets["validation"].pixels[::25][:32], config.preprocessing),
            ),
            "non_xray_gate": {**gate_fit, **evaluate_gate(predictor, trained.val)},
            "robustness": robustness_report(predictor, config.external_dev, seed=0),
            "split": trained.split,
            "training": {
                **config.as_dict(),
                "epochs_run": len(trained.history.get("loss", [])),
                "class_weights": "balanced",
                "wall_time_minutes": round(trained.seconds / 60, 1),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU only",
            },
            "library_versions": library_versions(),
            "intended_use": INTENDED_USE,
            "limits": LIMITS,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    card.write(out)
    write_reference(out, measure_reference(predictor, trained.val, config.seed))
    write_report(
        build / "report", sets["external"].labels, probabilities["external"], threshold, trained.history
    )
    print(
        json.dumps(
            {k: card.to_json()[k] for k in ("model_version", "threshold", "validation", "external")}, indent=1
        )
    )
    return card


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Publish the checkpoint in --build-dir to --out again, without retraining "
        "(the training options come from the checkpoint's training.json)."
    )
    add_train_options(
        parser,
        (
            "build_dir",
            "out",
            "external_dev",
            "threshold_policy",
            "min_sensitivity",
            "threshold_on",
            "threshold_quantile",
            "calibrate_on",
            "bootstrap_rounds",
            "ensemble_with",
        ),
    )
    args = parser.parse_args(argv)
    trained, config = load_checkpoint(args.build_dir)
    publish(trained, config_from(args, config))


if __name__ == "__main__":
    main()
