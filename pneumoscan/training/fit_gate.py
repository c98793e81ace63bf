"""Fit the non-X-ray gate on training X-rays and measure it on validation X-rays and non-X-rays.

`python -m pneumoscan.training.fit_gate` refits the gate of an already published model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pneumoscan.dataset import LabelledImage, list_labelled_images, split_by_patient
from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.gate import STATISTICS, XrayGate, image_statistics, layout
from pneumoscan.inference import CARD_FILE, Predictor
from pneumoscan.training.non_xrays import non_xray_uploads
from pneumoscan.training.served_files import load_pixels, served_outputs

COMPONENTS = 32
TAIL = 0.0005
# Each statistic's training range is widened by this fraction of its width. Near-white area
# (burned-in labels, over-exposure) and symmetry (rotated patients) vary most among real
# X-rays and refuse no non-X-ray on their own, so they get the widest margins.
RANGE_MARGIN = np.array([{"contrast": 0.1, "texture": 0.1, "white_area": 2.0, "symmetry": 1.0, "layout": 0.15}[name]
                         for name in STATISTICS])
SCORE_QUANTILE = 0.999
SCORE_MARGIN = 1.2
MAX_COLOURFULNESS = 12.0


def gate_features(model_path: Path, items: list[LabelledImage]) -> tuple[np.ndarray, np.ndarray]:
    """Pooled last-activation features and 224x224 grayscale pixels of each file, through the serving path."""
    grays = load_pixels(items)
    return served_outputs(model_path, grays)[1], grays


def fit_gate(pooled: np.ndarray, grays: np.ndarray) -> XrayGate:
    """Ranges and distances that 99.9% of training X-rays fall within, widened by a margin
    (no non-X-ray image is used to fit it; the margins were set looking at the refusal rates)."""
    template = np.mean([layout(g) for g in grays], axis=0)
    template = (template - template.mean()) / template.std()
    stats = np.stack([image_statistics(g, template) for g in grays])
    mean = pooled.mean(axis=0)
    _, _, vt = np.linalg.svd(pooled - mean, full_matrices=False)
    components = vt[:COMPONENTS]
    projected = (pooled - mean) @ components.T
    residual = (pooled - mean) - projected @ components
    low, high = np.quantile(stats, TAIL, axis=0), np.quantile(stats, 1 - TAIL, axis=0)
    margin = RANGE_MARGIN * (high - low)
    gate = XrayGate(mean=mean.astype(np.float32), components=components.astype(np.float32),
                    component_var=projected.var(axis=0).astype(np.float32),
                    residual_var=float(np.mean(np.sum(residual**2, axis=1))), max_score=np.inf,
                    max_colourfulness=MAX_COLOURFULNESS,
                    low=(low - margin).astype(np.float32), high=(high + margin).astype(np.float32),
                    template=template.astype(np.float32))
    max_score = SCORE_MARGIN * float(np.quantile(gate.score(pooled), SCORE_QUANTILE))
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
        "statistics": {"names": list(STATISTICS),
                       "low": predictor.gate.low.tolist(), "high": predictor.gate.high.tolist()},
        "validation_xrays": len(val), "validation_xrays_refused": xray_refused,
        "validation_refusal_rate": len(xray_refused) / max(len(val), 1),
        "non_xrays": len(negatives), "non_xrays_refused": len(negatives) - len(accepted),
        "non_xray_refusal_rate": (len(negatives) - len(accepted)) / max(len(negatives), 1),
        "non_xrays_accepted": accepted,
        "non_xray_set": "scikit-image and scikit-learn sample pictures with crops, 40 LFW faces, synthetic documents, screenshots, blank, near-uniform, noise, gradients",
    }


def refit(model_dir: Path, head_file: Path, train: list[LabelledImage], val: list[LabelledImage]) -> dict:
    """Fit the gate for the model in `model_dir`, store it beside the head weights, measure it."""
    card_path = model_dir / CARD_FILE
    card = json.loads(card_path.read_text())
    gate = fit_gate(*gate_features(model_dir / card["model_file"], train))
    with np.load(head_file) as saved:
        head = {k: saved[k] for k in ("dense_kernel", "dense_bias")}
    np.savez(model_dir / card["head_file"], **head, **gate.arrays())
    card["non_xray_gate"] = evaluate_gate(Predictor.load(model_dir), val)
    card_path.write_text(json.dumps(card, indent=1))
    return card["non_xray_gate"]


def main(argv: list[str] | None = None) -> None:
    from pneumoscan.training.pipeline import parse_args

    args = parse_args(argv)
    train, val = split_by_patient(list_labelled_images(args.data), args.val_fraction, args.seed)
    card = json.loads((args.out / CARD_FILE).read_text())
    report = refit(args.out, args.out / card["head_file"], train, val)
    print(json.dumps({k: v for k, v in report.items() if k != "non_xrays_accepted"}, indent=1))
    print("accepted non-X-rays:", report["non_xrays_accepted"])


if __name__ == "__main__":
    main()
