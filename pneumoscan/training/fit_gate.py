"""Fit the non-X-ray gate on training X-rays and measure it on validation X-rays and non-X-rays."""

from __future__ import annotations

import numpy as np

from pneumoscan.dataset import LabelledImage
from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.gate import XrayGate
from pneumoscan.inference import Predictor
from pneumoscan.training.non_xrays import non_xray_uploads

COMPONENTS = 32
TRAIN_QUANTILE = 0.999
THRESHOLD_MARGIN = 1.2
MAX_COLOURFULNESS = 12.0
MIN_CONTRAST = 8.0


def fit_gate(pooled: np.ndarray) -> XrayGate:
    """Principal subspace of the training X-rays' pooled features; refuse beyond 1.2x the
    99.9th percentile of the training scores (no non-X-ray image is used to fit it)."""
    mean = pooled.mean(axis=0)
    _, _, vt = np.linalg.svd(pooled - mean, full_matrices=False)
    components = vt[:COMPONENTS]
    projected = (pooled - mean) @ components.T
    residual = (pooled - mean) - projected @ components
    gate = XrayGate(mean=mean.astype(np.float32), components=components.astype(np.float32),
                    component_var=projected.var(axis=0).astype(np.float32),
                    residual_var=float(np.mean(np.sum(residual**2, axis=1))),
                    threshold=0.0, max_colourfulness=MAX_COLOURFULNESS, min_contrast=MIN_CONTRAST)
    threshold = THRESHOLD_MARGIN * float(np.quantile(gate.score(pooled), TRAIN_QUANTILE))
    return XrayGate(**{**gate.__dict__, "threshold": threshold})


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
        "threshold": float(predictor.gate.threshold),
        "validation_xrays": len(val), "validation_xrays_refused": len(xray_refused),
        "validation_refusal_rate": len(xray_refused) / max(len(val), 1),
        "non_xrays": len(negatives), "non_xrays_refused": len(negatives) - len(accepted),
        "non_xray_refusal_rate": (len(negatives) - len(accepted)) / max(len(negatives), 1),
        "non_xrays_accepted": accepted,
        "non_xray_set": "scikit-image and scikit-learn sample pictures with crops, 40 LFW faces, synthetic documents, screenshots, blank, near-uniform, noise, gradients",
    }
