"""From a trained Keras model to what serving needs: ONNX model, head + gate arrays, model card.

`publish` is a sequence of named steps, each done once: mix the fine-tuned weights back toward
their start (WiSE-FT, the mixing chosen on the external set); export float32 ONNX (logits and last
activation); keep the lightest weight format whose AUCs stay within 0.002 of float32; fit Platt
scaling and pick the threshold on the external set; do the same for the subtype head on the
external set's pneumonia images; fit the non-X-ray gate; then measure for the card: Grad-CAM
against a GradientTape one, the map's faithfulness, the gate's refusals, every corruption
family, and the drift reference.
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
import time
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
from pneumoscan.metrics import bootstrap_auc_interval, classification_report, roc_auc
from pneumoscan.model_card import (
    CLASS_NAMES,
    POSITIVE_CLASS,
    SUBTYPE_NAMES,
    Calibration,
    ModelCard,
    SubtypeHead,
)
from pneumoscan.threshold import describe_policy, pick_threshold_with_interval
from pneumoscan.training.calibration import cross_validated_ece, fit_platt
from pneumoscan.training.config import TrainConfig, add_train_options, config_from
from pneumoscan.training.drift_reference import measure_reference
from pneumoscan.training.faithfulness import (
    RANDOMISATION_IMAGES,
    faithfulness_report,
    healthy_chest,
    randomisation_check,
)
from pneumoscan.training.fit_gate import evaluate_gate, fit_gate_for
from pneumoscan.training.onnx_variants import export_onnx, quantize_int8, store_float16
from pneumoscan.training.pipeline import Trained, load_checkpoint
from pneumoscan.training.report import write_report
from pneumoscan.training.robustness import robustness_report
from pneumoscan.training.served_files import load_pixels, model_inputs, served_outputs
from pneumoscan.training.xception import (
    LAST_CONV_LAYER,
    LOGIT_LAYER,
    PNEUMONIA,
    VIRAL,
    first_trained_block,
    submodel_from,
)

MODEL_FILE = "pneumoscan.onnx"
HEAD_FILE = "head_and_gate.npz"
MAX_AUC_DROP = 0.002
# The viral AUC is measured on the pneumonia images alone (200 external, 125 x 75 pairs), so its
# standard error is about twice the main AUC's; its tolerance is too.
MAX_VIRAL_AUC_DROP = 0.005
CALIBRATION_IMAGES = 200
SUBTYPE_POLICY = "youden"
SUBTYPE_QUANTILE = 0.5
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
    "The subtype (bacterial or viral) is the dataset's curation, read from its file names, and is "
    "noisier than the main label; it is an estimate for images labelled PNEUMONIA, not a "
    "microbiological result.",
]


@dataclass(frozen=True)
class LabelledSet:
    """A labelled folder's images as the serving path sees them, with patient groups and, for
    pneumonia images, whether the file name says viral."""

    name: str
    labels: np.ndarray
    viral: np.ndarray
    groups: np.ndarray
    pixels: np.ndarray

    @classmethod
    def of(cls, name: str, items: list[LabelledImage]) -> LabelledSet:
        return cls(
            name,
            np.array([i.label for i in items]),
            np.array([i.viral for i in items]),
            np.array([i.patient for i in items]),
            load_pixels(items),
        )

    @property
    def pneumonia(self) -> np.ndarray:
        return self.labels == 1


@dataclass(frozen=True)
class Scores:
    """Served logits of one set: pneumonia and viral."""

    logit: np.ndarray
    viral_logit: np.ndarray


def score_onnx(path: Path, sets: list[LabelledSet], config: TrainConfig) -> dict[str, Scores]:
    return {s.name: Scores(*served_outputs(path, s.pixels, config.preprocessing)[:2]) for s in sets}


def aucs(labelled: LabelledSet, scores: Scores) -> tuple[float, float]:
    """Pneumonia AUC on the set, and viral AUC among its pneumonia images."""
    rows = labelled.pneumonia
    return roc_auc(labelled.labels, scores.logit), roc_auc(labelled.viral[rows], scores.viral_logit[rows])


def mix_toward_start(trained: Trained, external: LabelledSet, config: TrainConfig) -> dict:
    """WiSE-FT (Wortsman et al., CVPR 2022): weights start + a * (fine-tuned - start), `a` among
    `config.mixings`, chosen by the external set's pneumonia AUC (the float Keras model). Leaves
    the model with the chosen weights and returns what each candidate scored."""
    fine_tuned = trained.model.get_weights()

    def mix(a: float) -> None:
        trained.model.set_weights(
            [s + a * (f - s) for s, f in zip(trained.start_weights, fine_tuned, strict=True)]
        )

    inputs = model_inputs(external.pixels, config.preprocessing)
    candidates = {}
    for mixing in (float(m) for m in config.mixings.split(",")):
        mix(mixing)
        logits = trained.model.predict(inputs, batch_size=64, verbose=0)
        pneumonia_auc, viral_auc = aucs(external, Scores(logits[:, PNEUMONIA], logits[:, VIRAL]))
        candidates[str(mixing)] = {"external_auc": pneumonia_auc, "external_viral_auc": viral_auc}
        print(f"mixing {mixing}: external AUC {pneumonia_auc:.4f}, viral AUC {viral_auc:.4f}", flush=True)
    chosen = max(candidates, key=lambda m: candidates[m]["external_auc"])
    mix(float(chosen))
    return {"chosen": float(chosen), "chosen_by": "external pneumonia AUC", "candidates": candidates}


def choose_weights(
    build: Path, fp32: Path, calibration: np.ndarray, sets: list[LabelledSet], config: TrainConfig
) -> tuple[Path, dict[str, Scores], dict]:
    """The lightest format whose AUCs on every set stay within MAX_AUC_DROP (pneumonia) and
    MAX_VIRAL_AUC_DROP (viral among pneumonia images) of float32, with its logits."""
    reference = score_onnx(fp32, sets, config)
    checks: dict = {
        "float32": {
            "size_mb": fp32.stat().st_size / 2**20,
            **{f"{s.name}_auc": aucs(s, reference[s.name])[0] for s in sets},
        }
    }
    makers = {
        "int8": lambda path: quantize_int8(fp32, path, calibration),
        "float16": lambda path: store_float16(fp32, path),
    }
    for name, make in makers.items():
        path = build / f"model_{name}.onnx"
        make(path)
        scores = score_onnx(path, sets, config)
        drops = {s.name: np.subtract(aucs(s, reference[s.name]), aucs(s, scores[s.name])) for s in sets}
        accepted = all(d[0] <= MAX_AUC_DROP and d[1] <= MAX_VIRAL_AUC_DROP for d in drops.values())
        checks[name] = {
            "size_mb": path.stat().st_size / 2**20,
            "accepted": accepted,
            **{f"{k}_auc_drop": float(v[0]) for k, v in drops.items()},
            **{f"{k}_viral_auc_drop": float(v[1]) for k, v in drops.items()},
            "max_abs_logit_change": max(
                float(np.abs(scores[k].logit - reference[k].logit).max()) for k in scores
            ),
        }
        print(f"{name}: {checks[name]}")
        if accepted:
            checks["shipped"] = name
            return path, scores, checks
    checks["shipped"] = "float32"
    return fp32, reference, checks


def calibrate(name: str, labels: np.ndarray, logits: np.ndarray) -> tuple[Calibration, dict]:
    """Platt scaling fitted on one set, with its cross-validated ECE there (what a fit does on new images)."""
    scale, bias = fit_platt(labels, logits)
    return Calibration(method=f"platt, fitted on {name}", scale=scale, bias=bias), {
        "fitted_on": name,
        "images": len(labels),
        "ece_before": classification_report(labels, sigmoid(logits), 0.5)["ece"],
        "ece_cross_validated_5_fold": cross_validated_ece(labels, logits),
    }


def choose_threshold(
    name: str,
    labels: np.ndarray,
    probabilities: np.ndarray,
    groups: np.ndarray,
    policy: str,
    quantile: float,
    config: TrainConfig,
) -> tuple[float, dict]:
    """The ROC policy's threshold with its patient-level bootstrap interval, on the chosen set."""
    threshold, interval = pick_threshold_with_interval(
        labels,
        probabilities,
        groups,
        policy,
        config.min_sensitivity,
        quantile,
        config.seed,
        config.bootstrap_rounds,
    )
    description = describe_policy(
        policy, config.min_sensitivity, f"the {name} set", interval["bootstrap_rounds"], quantile
    )
    return threshold, {"picked_on": name, "description": description, **interval}


def with_auc_interval(report: dict, labels: np.ndarray, scores: np.ndarray) -> dict:
    interval = bootstrap_auc_interval(labels, scores)
    return {**report, "auc_interval_95": list(interval) if interval else None}


def subtype_head(
    sets: dict[str, LabelledSet], scores: dict[str, Scores], config: TrainConfig
) -> tuple[SubtypeHead, dict]:
    """Calibration and threshold of the viral logit on the external set's pneumonia images.
    The threshold maximises Youden's J (the median bootstrap pick): with no agreed cost of calling
    a bacterial pneumonia viral or the reverse, the point that maximises balanced accuracy."""
    chosen = sets[config.calibrate_on]
    rows = chosen.pneumonia
    labels, logits = chosen.viral[rows], scores[chosen.name].viral_logit[rows]
    platt, calibration_report = calibrate(f"{chosen.name} pneumonia images", labels, logits)
    probabilities = sigmoid(platt.scale * logits + platt.bias)
    threshold, threshold_report = choose_threshold(
        f"{chosen.name} pneumonia images",
        labels,
        probabilities,
        chosen.groups[rows],
        SUBTYPE_POLICY,
        SUBTYPE_QUANTILE,
        config,
    )
    head = SubtypeHead(platt, threshold, threshold_report["description"])
    metrics = {}
    for name, labelled in sets.items():
        rows = labelled.pneumonia
        viral = sigmoid(platt.scale * scores[name].viral_logit[rows] + platt.bias)
        report = classification_report(labelled.viral[rows], viral, threshold)
        report["balanced_accuracy"] = (report["sensitivity"] + report["specificity"]) / 2
        metrics[name] = with_auc_interval(report, labelled.viral[rows], viral)
    return head, {
        "classes": list(SUBTYPE_NAMES),
        "positive": SUBTYPE_NAMES[1],
        "labels_from": "file names (person*_virus_*, person*_bacteria_*)",
        "threshold_choice": threshold_report,
        "calibration_choice": calibration_report,
        **metrics,
    }


def tape_gradcam(model, x: np.ndarray) -> np.ndarray:
    """keras-io's GradientTape Grad-CAM of one model input on the float32 Keras model. The tape
    watches the last activation and runs the head after it."""
    activation = keras.Model(model.input, model.get_layer(LAST_CONV_LAYER).output)(tf.constant(x[None]))
    head = submodel_from(model, LAST_CONV_LAYER)
    with tf.GradientTape() as tape:
        tape.watch(activation)
        pneumonia = head(activation)[:, PNEUMONIA]
    grads = tape.gradient(pneumonia, activation)
    heat = tf.nn.relu(activation[0] @ tf.reduce_mean(grads, axis=(0, 1, 2))[:, None])[:, :, 0]
    peak = float(tf.reduce_max(heat))
    return (heat / peak if peak > 0 else heat).numpy()


def evenly_spaced(pixels: np.ndarray, count: int) -> np.ndarray:
    """`count` images spread over the set, however large the validation split is."""
    return pixels[np.linspace(0, len(pixels) - 1, min(count, len(pixels))).astype(int)]


def gradcam_check(model, predictor: Predictor, inputs: np.ndarray) -> dict:
    """The served Grad-CAM (NumPy, on the shipped model's activation) against the GradientTape
    Grad-CAM on the float32 Keras model: the whole difference, weights format included."""
    differences = []
    for x in inputs:
        served = run_model(predictor.session, x[None]).activation
        differences.append(np.abs(gradcam(served[0], predictor.dense_kernel) - tape_gradcam(model, x)))
    return {
        "images": len(differences),
        "grid": list(differences[0].shape),
        "max_abs_diff": float(np.max(differences)),
        "mean_abs_diff": float(np.mean(differences)),
        "median_of_per_image_max": float(np.median([d.max() for d in differences])),
    }


def write_head_and_gate(model, out: Path, config: TrainConfig, train: list[LabelledImage]) -> dict:
    """The pneumonia logit's weights (Grad-CAM's channel weights) and the non-X-ray gate fitted
    on the shipped model's features, in one file beside the model."""
    kernel, bias = model.get_layer(LOGIT_LAYER).get_weights()
    gate, gate_fit = fit_gate_for(out / MODEL_FILE, config.preprocessing, train, config.seed)
    np.savez(
        out / HEAD_FILE,
        dense_kernel=kernel[:, PNEUMONIA].astype(np.float32),
        dense_bias=bias[PNEUMONIA : PNEUMONIA + 1].astype(np.float32),
        **gate.arrays(),
    )
    return gate_fit


def explanation_report(model, predictor: Predictor, external: LabelledSet, config: TrainConfig) -> dict:
    """Faithfulness of the served map on the external pneumonia images, with the randomisation check."""
    grays = external.pixels[external.pneumonia]
    report = faithfulness_report(predictor, grays, healthy_chest(config.data), config.seed)
    inputs = model_inputs(grays[:RANDOMISATION_IMAGES], config.preprocessing)
    return {**report, "randomisation": randomisation_check(model, inputs, config.seed)}


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
    """Export `trained`, measure it and write model_weights/ and the card."""
    started = time.time()
    build, out = config.build_dir, config.out
    build.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    sets = {
        "validation": LabelledSet.of("validation", trained.val),
        "external": LabelledSet.of("external", list_labelled_images(config.external_dev)),
    }
    mixing = mix_toward_start(trained, sets["external"], config)
    fp32 = build / "model_float32.onnx"
    export_onnx(trained.model, fp32)
    rng = np.random.default_rng(config.seed)
    picked = rng.choice(len(trained.train), min(CALIBRATION_IMAGES, len(trained.train)), replace=False)
    calibration_inputs = model_inputs(load_pixels([trained.train[i] for i in picked]), config.preprocessing)
    shipped, scores, variants = choose_weights(build, fp32, calibration_inputs, list(sets.values()), config)

    calibrated = sets[config.calibrate_on]
    platt, calibration_report = calibrate(calibrated.name, calibrated.labels, scores[calibrated.name].logit)
    probabilities = {name: sigmoid(platt.scale * s.logit + platt.bias) for name, s in scores.items()}
    chosen = sets[config.threshold_on]
    threshold, threshold_report = choose_threshold(
        chosen.name,
        chosen.labels,
        probabilities[chosen.name],
        chosen.groups,
        config.threshold_policy,
        config.threshold_quantile,
        config,
    )
    subtype, subtype_report = subtype_head(sets, scores, config)

    shutil.copyfile(shipped, out / MODEL_FILE)
    gate_fit = write_head_and_gate(trained.model, out, config, trained.train)
    digest = hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
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
        subtype=subtype,
    )
    predictor = Predictor(out, card=card)
    block = first_trained_block(config.cache_layer)
    reports = {
        name: with_auc_interval(
            classification_report(s.labels, probabilities[name], threshold), s.labels, probabilities[name]
        )
        for name, s in sets.items()
    }
    measured = {
        "gradcam_vs_float32_gradienttape": gradcam_check(
            trained.model,
            predictor,
            model_inputs(evenly_spaced(sets["validation"].pixels, 32), config.preprocessing),
        ),
        "explanation": explanation_report(trained.model, predictor, sets["external"], config),
        "non_xray_gate": {**gate_fit, **evaluate_gate(predictor, trained.val)},
        "robustness": robustness_report(predictor, config.external_dev, seed=0),
    }
    write_reference(out, measure_reference(predictor, trained.val, config.seed))
    write_report(
        build / "report", sets["external"].labels, probabilities["external"], threshold, trained.history
    )
    publish_minutes = (time.time() - started) / 60
    card = replace(
        card,
        extra={
            "architecture": f"Xception (ImageNet) at {config.input_size} px, exit flow at output stride 16 "
            f"(block 13 without its stride, block 14 dilated by 2), blocks {block}-14 fine-tuned"
            + (
                f" {config.soup} times from one linear probe and averaged (a model soup)"
                if config.soup > 1
                else ""
            )
            + "; "
            "global average pooling, dropout, two logits (pneumonia; viral rather than bacterial)",
            "runtime": "onnxruntime",
            "weights_format": variants["shipped"],
            "input_size": [config.input_size, config.input_size, 3],
            "preprocessing": config.preprocessing.describe(),
            "threshold_choice": threshold_report,
            "calibration_choice": calibration_report,
            **reports,
            "subtype_report": subtype_report,
            "weight_mixing": mixing,
            "weight_variants": variants,
            **measured,
            "split": trained.split,
            "training": {
                **config.as_dict(),
                "epochs_run": len(trained.history.get("loss", [])),
                "class_weights": "balanced",
                "wall_time_minutes": round(trained.seconds / 60, 1),
                "publish_minutes": round(publish_minutes, 1),
                "make_train_minutes": round(trained.seconds / 60 + publish_minutes, 1),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU only",
            },
            "library_versions": library_versions(),
            "intended_use": INTENDED_USE,
            "limits": LIMITS,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    card.write(out)
    summary = {k: card.to_json()[k] for k in ("model_version", "threshold", "validation", "external")}
    print(
        json.dumps(
            {**summary, "subtype": subtype_report["external"], "training": card.extra["training"]}, indent=1
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
            "mixings",
        ),
    )
    args = parser.parse_args(argv)
    trained, config = load_checkpoint(args.build_dir)
    publish(trained, config_from(args, config))


if __name__ == "__main__":
    main()
