"""Fit the non-X-ray gate on training X-rays and measure it on validation X-rays and non-X-rays.

`python -m pneumoscan.training.fit_gate` refits the gate of an already published model.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from pneumoscan.dataset import LabelledImage, list_labelled_images, split_by_patient
from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.gate import STATISTICS, XrayGate, image_statistics, layout, unit_rows
from pneumoscan.inference import DEFAULT_MODEL_DIR, Predictor
from pneumoscan.model_card import ModelCard
from pneumoscan.preprocess import Preprocessing
from pneumoscan.training.config import add_train_options
from pneumoscan.training.corruptions import FAMILIES
from pneumoscan.training.non_xrays import non_xray_uploads
from pneumoscan.training.served_files import load_pixels, served_outputs

COMPONENTS = 32
TAIL = 0.0005
# Each statistic's training range is widened by this fraction of its width. Near-white area
# (burned-in labels, over-exposure) and symmetry (rotated patients) vary most among real
# X-rays and refuse no non-X-ray on their own, so they get the widest margins. Layout (the match
# with the mean X-ray) falls when a chest is cropped or photographed askew: at 0.15 of its width
# the lower bound moved with which training image drew which corruption, and refused a cropped
# and a tilted external X-ray; at 0.3 the margin, not the draw, sets the bound, below those
# X-rays and above the textures and pages that only layout refuses.
RANGE_MARGIN = np.array(
    [
        {"contrast": 0.1, "texture": 0.1, "white_area": 2.0, "symmetry": 1.0, "layout": 0.3}[name]
        for name in STATISTICS
    ]
)
SCORE_QUANTILE = 0.999
SCORE_MARGIN = 1.4
MAX_COLOURFULNESS = 12.0


def with_corrupted_copies(grays: np.ndarray, seed: int) -> np.ndarray:
    """The X-rays and one corrupted copy of each (the families in turn): X-rays arrive blurred,
    re-compressed or photographed, and the gate must not refuse a real X-ray for that."""
    rng = np.random.default_rng(seed)
    families = list(FAMILIES.values())
    copies = [families[index % len(families)](gray, rng) for index, gray in enumerate(grays)]
    return np.concatenate([grays, np.stack(copies)])


def fit_gate(pooled: np.ndarray, grays: np.ndarray, clean: int) -> XrayGate:
    """Ranges and distances that 99.9% of training X-rays fall within (the first `clean` rows as
    stored, the rest corrupted copies). Each statistic's range is the clean X-rays' range,
    stretched to the corrupted copies' whole range, with a margin of the clean width added above
    and below the clean range but not below the corrupted minimum: a margin below that would let
    smooth gradients through. No non-X-ray image is used to fit it; the margins were set looking
    at the refusal rates."""
    template = np.mean([layout(g) for g in grays[:clean]], axis=0)
    template = (template - template.mean()) / template.std()
    stats = np.stack([image_statistics(g, template) for g in grays])
    directions = unit_rows(pooled)
    mean = directions.mean(axis=0)
    _, _, vt = np.linalg.svd(directions - mean, full_matrices=False)
    components = vt[:COMPONENTS]
    projected = (directions - mean) @ components.T
    residual = (directions - mean) - projected @ components
    low, high = np.quantile(stats[:clean], TAIL, axis=0), np.quantile(stats[:clean], 1 - TAIL, axis=0)
    margin = RANGE_MARGIN * (high - low)
    low = np.minimum(low - margin, stats[clean:].min(axis=0))
    high = np.maximum(high, stats[clean:].max(axis=0)) + margin
    gate = XrayGate(
        mean=mean.astype(np.float32),
        components=components.astype(np.float32),
        component_var=projected.var(axis=0).astype(np.float32),
        residual_var=float(np.mean(np.sum(residual**2, axis=1))),
        max_score=np.inf,
        max_colourfulness=MAX_COLOURFULNESS,
        low=low.astype(np.float32),
        high=high.astype(np.float32),
        template=template.astype(np.float32),
    )
    max_score = SCORE_MARGIN * float(np.quantile(gate.feature_distance(pooled), SCORE_QUANTILE))
    return XrayGate(**{**gate.__dict__, "max_score": max_score})


def _refused(predictor: Predictor, data: bytes) -> bool:
    try:
        predictor.predict(decode_image(data))
    except ImageRejected:
        return True
    return False


def evaluate_gate(predictor: Predictor, val: list[LabelledImage]) -> dict:
    """Refusal rates through the served path: validation X-rays (want <= 1%) and non-X-rays (want >= 99%)."""
    xray_refused = [i.path.name for i in val if _refused(predictor, i.path.read_bytes())]
    negatives = list(non_xray_uploads())
    accepted = [name for name, data in negatives if not _refused(predictor, data)]
    return {
        "max_score": float(predictor.gate.max_score),
        "statistics": {
            "names": list(STATISTICS),
            "low": predictor.gate.low.tolist(),
            "high": predictor.gate.high.tolist(),
        },
        "validation_xrays": len(val),
        "validation_xrays_refused": xray_refused,
        "validation_refusal_rate": len(xray_refused) / max(len(val), 1),
        "non_xrays": len(negatives),
        "non_xrays_refused": len(negatives) - len(accepted),
        "non_xray_refusal_rate": (len(negatives) - len(accepted)) / max(len(negatives), 1),
        "non_xrays_accepted": accepted,
        "non_xray_set": "scikit-image and scikit-learn sample pictures with crops, 40 LFW faces, "
        "synthetic documents, screenshots, blank, near-uniform, noise, gradients",
    }


def fit_gate_for(
    model_path: Path, preprocessing: Preprocessing, train: list[LabelledImage], seed: int
) -> tuple[XrayGate, dict]:
    """The gate of one ONNX model, fitted on its training X-rays and a corrupted copy of each."""
    grays = with_corrupted_copies(load_pixels(train), seed)
    pooled = served_outputs(model_path, grays, preprocessing)[2]
    return fit_gate(pooled, grays, len(train)), {
        "fitted_on": f"{len(train)} training X-rays and a corrupted copy of each"
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Refit the non-X-ray gate of a published model and measure it."
    )
    parser.add_argument(
        "--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="the published model's folder"
    )
    add_train_options(parser, ("data", "seed", "split_seed", "val_fraction"))
    args = parser.parse_args(argv)
    train, val = split_by_patient(list_labelled_images(args.data), args.val_fraction, args.split_seed)
    card = ModelCard.load(args.model_dir)
    gate, fitted = fit_gate_for(args.model_dir / card.model_file, card.preprocessing, train, args.seed)
    head_path = args.model_dir / card.head_file
    with np.load(head_path) as saved:
        head = {k: saved[k] for k in ("dense_kernel", "dense_bias")}
    np.savez(head_path, **head, **gate.arrays())
    report = {**fitted, **evaluate_gate(Predictor.load(args.model_dir), val)}
    replace(card, extra={**card.extra, "non_xray_gate": report}).write(args.model_dir)
    print(json.dumps({k: v for k, v in report.items() if k != "non_xrays_accepted"}, indent=1))
    print("accepted non-X-rays:", report["non_xrays_accepted"])


if __name__ == "__main__":
    main()
