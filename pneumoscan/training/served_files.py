"""Many files through the serving path, in batches: training, threshold, variants and gate.

The pixels come from the app's own `decode_image` and `resize_to_input`, the model input from
`to_model_input`, and the outputs from `run_model`, exactly as `Predictor.predict` does them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumoscan.dataset import LabelledImage
from pneumoscan.decode import decode_image
from pneumoscan.inference import create_session, run_model
from pneumoscan.preprocess import Preprocessing, resize_to_input, to_model_input


def load_pixels(items: list[LabelledImage]) -> np.ndarray:
    """Every image through the app's own decode and resize: (N, 224, 224) uint8."""
    from tqdm import tqdm

    return np.stack(
        [
            resize_to_input(decode_image(i.path.read_bytes()).gray)
            for i in tqdm(items, desc="decode", unit="img")
        ]
    )


def model_inputs(pixels: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """(N, 224, 224) uint8 pixels -> (N, size, size, 3) model inputs."""
    return np.stack([to_model_input(p, preprocessing) for p in pixels])


def served_outputs(
    model_path: Path, pixels: np.ndarray, preprocessing: Preprocessing, batch: int = 32
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Pneumonia logits (N,), viral logits (N,) (None for a model without the subtype head) and
    pooled last activations (N, C) of an ONNX model."""
    session = create_session(model_path)
    logits, viral, pooled = [], [], []
    for start in range(0, len(pixels), batch):
        outputs = run_model(session, model_inputs(pixels[start : start + batch], preprocessing))
        logits.append(outputs.logit)
        viral.append(outputs.viral_logit)
        pooled.append(outputs.activation.mean(axis=(1, 2)))
    viral_logits = None if viral[0] is None else np.concatenate(viral)
    return np.concatenate(logits), viral_logits, np.concatenate(pooled)
