"""From a trained Keras model to what serving needs: ONNX model, head + gate arrays, model card.

Steps: export float32 ONNX with two outputs (logit, last activation); pick the threshold by
ROC on the validation split through the serving path; build float16-storage and static int8
variants and keep the lightest one whose validation AUC and stored-threshold sensitivity stay
within 0.002 / 0.005 of float32; fit the non-X-ray gate on the shipped model's features;
check NumPy Grad-CAM against a GradientTape one; write the card and the report pictures.
Re-run on a saved checkpoint with `python -m pneumoscan.training.publish`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from pneumoscan.dataset import CLASS_NAMES, LabelledImage, list_labelled_images, split_by_patient
from pneumoscan.inference import CARD_FILE, Predictor, run_model
from pneumoscan.metrics import bootstrap_threshold, classification_report, roc_auc
from pneumoscan.preprocess import Preprocessing
from pneumoscan.training.fit_gate import refit
from pneumoscan.training.onnx_variants import export_onnx, quantize_int8, store_float16
from pneumoscan.training.report import write_report
from pneumoscan.training.served_files import load_pixels, model_inputs, served_outputs
from pneumoscan.training.xception import LAST_CONV_LAYER, LOGIT_LAYER

MODEL_FILE = "pneumoscan.onnx"
HEAD_FILE = "head_and_gate.npz"
MAX_AUC_DROP = 0.002
MAX_SENSITIVITY_DROP = 0.005
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
    "performance on new data; the held-out Kermany test split is harder.",
]


def gradcam_check(model, predictor: Predictor, inputs: np.ndarray) -> dict:
    """The served Grad-CAM (NumPy, on the shipped model's activation) against keras-io's
    GradientTape Grad-CAM on the float32 Keras model: the whole difference, weights format included."""
    import keras
    import tensorflow as tf

    from pneumoscan.gradcam import gradcam

    grad_model = keras.Model(model.input, [model.get_layer(LAST_CONV_LAYER).output, model.output])
    differences = []
    for x in inputs:
        with tf.GradientTape() as tape:
            activation, logit = grad_model(tf.constant(x[None]))
            pneumonia = logit[:, 0]
        grads = tape.gradient(pneumonia, activation)
        heat = tf.nn.relu(activation[0] @ tf.reduce_mean(grads, axis=(0, 1, 2))[:, None])[:, :, 0]
        peak = float(tf.reduce_max(heat))
        heat = (heat / peak if peak > 0 else heat).numpy()
        _, served = run_model(predictor.session, x[None])
        differences.append(np.abs(gradcam(served[0], predictor.dense_kernel) - heat))
    return {"images": len(differences), "max_abs_diff": float(np.max(differences)),
            "mean_abs_diff": float(np.mean(differences)),
            "median_of_per_image_max": float(np.median([d.max() for d in differences]))}


def choose_variant(build: Path, fp32: Path, val_pixels: np.ndarray, val_labels: np.ndarray,
                   calibration: np.ndarray, threshold: float, reference: np.ndarray) -> tuple[Path, np.ndarray, dict]:
    """The lightest variant within the accuracy limits of float32, with its validation probabilities."""
    ref_sens = classification_report(val_labels, reference, threshold)["sensitivity"]
    ref_auc = roc_auc(val_labels, reference)
    checks = {}
    candidates = [("int8", lambda p: quantize_int8(fp32, p, calibration)), ("float16", lambda p: store_float16(fp32, p))]
    chosen = None
    for name, make in candidates:
        path = build / f"model_{name}.onnx"
        make(path)
        probs, _ = served_outputs(path, val_pixels)
        sens = classification_report(val_labels, probs, threshold)["sensitivity"]
        auc = roc_auc(val_labels, probs)
        ok = (ref_auc - auc) <= MAX_AUC_DROP and abs(ref_sens - sens) <= MAX_SENSITIVITY_DROP
        checks[name] = {"auc": auc, "sensitivity": sens, "auc_drop": ref_auc - auc, "sensitivity_change": sens - ref_sens,
                        "size_mb": path.stat().st_size / 2**20, "accepted": ok}
        print(f"{name}: {checks[name]}")
        if ok and chosen is None:
            chosen = (name, path, probs)
    checks["float32"] = {"auc": ref_auc, "sensitivity": ref_sens, "size_mb": fp32.stat().st_size / 2**20}
    if chosen is None:
        raise RuntimeError(f"no variant kept float32's accuracy: {checks}")
    checks["shipped"] = chosen[0]
    return chosen[1], chosen[2], checks


def library_versions() -> dict[str, str]:
    import cv2
    import keras
    import onnxruntime
    import PIL
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__}


def publish(model, train: list[LabelledImage], val: list[LabelledImage], args: argparse.Namespace,
            split: dict, history: dict, started: float) -> dict:
    build, out = Path(args.build_dir), Path(args.out)
    build.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = build / "model_float32.onnx"
    export_onnx(model, fp32)

    val_pixels = load_pixels(val)
    val_labels = np.array([i.label for i in val])
    groups = np.array([i.patient for i in val])
    reference, _ = served_outputs(fp32, val_pixels)
    threshold = bootstrap_threshold(val_labels, reference, groups, args.threshold_policy, args.min_sensitivity, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    calibration = model_inputs(load_pixels([train[i] for i in rng.choice(len(train), min(CALIBRATION_IMAGES, len(train)), replace=False)]))
    shipped, served, variants = choose_variant(build, fp32, val_pixels, val_labels, calibration, threshold, reference)

    kernel, bias = model.get_layer(LOGIT_LAYER).get_weights()
    shutil.copyfile(shipped, out / MODEL_FILE)
    head_file = build / HEAD_FILE
    np.savez(head_file, dense_kernel=kernel.reshape(-1).astype(np.float32), dense_bias=bias.astype(np.float32))
    digest = hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
    card = {
        "model_version": f"xception-{dt.date.today():%Y%m%d}-{digest[:8]}",
        "model_file": MODEL_FILE, "model_sha256": digest, "head_file": HEAD_FILE,
        "architecture": "Xception (ImageNet) fine-tuned from block 9; global average pooling, dropout, one logit",
        "runtime": "onnxruntime", "weights_format": variants["shipped"],
        "input_size": [224, 224, 3], "preprocessing": Preprocessing().describe(),
        "preprocessing_parameters": Preprocessing().as_dict(),
        "class_names": list(CLASS_NAMES), "positive_class": "PNEUMONIA",
        "threshold": threshold, "threshold_policy": args.threshold_policy if args.threshold_policy == "youden"
        else f"highest specificity with sensitivity >= {args.min_sensitivity} (median of 200 patient-level bootstrap picks)",
    }
    (out / CARD_FILE).write_text(json.dumps(card, indent=1))
    gate_report = refit(out, head_file, train, val)

    predictor = Predictor.load(out)
    card["validation"] = classification_report(val_labels, served, threshold)
    card["validation"]["float32_reference"] = classification_report(val_labels, reference, threshold)
    card["weight_variants"] = variants
    card["gradcam_vs_float32_gradienttape"] = gradcam_check(model, predictor, model_inputs(val_pixels[:: max(1, len(val) // 32)][:32]))
    card["non_xray_gate"] = gate_report
    card["split"] = split
    card["training"] = {"base_weights": str(args.base_weights), "cache_layer": args.cache_layer, "views": args.views,
                        "epochs_run": len(history.get("loss", [])), "learning_rate": args.learning_rate,
                        "augmentation": "rotation +-8 deg, shift +-6%, zoom 0.92-1.12, gamma, brightness, contrast; no flips",
                        "class_weights": "balanced", "wall_time_minutes": round((time.time() - started) / 60, 1),
                        "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU only"}
    card["library_versions"] = library_versions()
    card["intended_use"], card["limits"] = INTENDED_USE, LIMITS
    card["created"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    (out / CARD_FILE).write_text(json.dumps(card, indent=1))
    write_report(build / "report", val_labels, served, threshold, history)
    print(json.dumps({k: card[k] for k in ("model_version", "threshold", "validation", "non_xray_gate")}, indent=1))
    return card


def main(argv: list[str] | None = None) -> None:
    """Publish again from `build/model.keras` and `build/training.json` without retraining."""
    import keras

    from pneumoscan.training.pipeline import parse_args

    args = parse_args(argv)
    saved = json.loads((args.build_dir / "training.json").read_text())
    model = keras.models.load_model(args.build_dir / "model.keras", compile=False)
    train, val = split_by_patient(list_labelled_images(args.data), args.val_fraction, args.seed)
    publish(model, train, val, args, saved["split"], saved["history"], time.time() - saved["train_seconds"])


if __name__ == "__main__":
    main()
