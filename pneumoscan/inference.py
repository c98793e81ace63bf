"""The served model: ONNX Runtime, one call gives the logit and the last activation.

No TensorFlow here: a worker holding this fits a 512 MB instance. Load once per process
(`Predictor.load`), then `predict` per image.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pneumoscan.dataset import CLASS_NAMES
from pneumoscan.decode import DecodedImage
from pneumoscan.gate import XrayGate
from pneumoscan.gradcam import gradcam
from pneumoscan.preprocess import Preprocessing, resize_to_input, to_model_input

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "model_weights"
CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class Prediction:
    probability: float
    label: str
    threshold: float
    model_version: str
    cam: np.ndarray
    inference_ms: float


def sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


def label_for(probability: float, threshold: float) -> str:
    return CLASS_NAMES[int(probability >= threshold)]


def create_session(model_path: Path, threads: int = 0) -> ort.InferenceSession:
    """One session per process; `threads` 0 lets ONNX Runtime use every core. The web app gives
    each worker cores / workers threads, so workers do not compete for a core; with more than
    one thread, ONNX Runtime's default spin-waiting between operators is kept (-0.7 ms a call)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def run_model(session: ort.InferenceSession, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs (N, 224, 224, 3) -> logits (N,) and activations (N, 7, 7, 2048), in one call."""
    logits, activations = session.run(["logit", "activation"], {session.get_inputs()[0].name: batch})
    return logits.reshape(-1), activations


class Predictor:
    """The committed model with its threshold, Grad-CAM head weights and non-X-ray gate."""

    def __init__(self, model_dir: Path, threads: int = 0) -> None:
        self.card = json.loads((model_dir / CARD_FILE).read_text())
        self.session = create_session(model_dir / self.card["model_file"], threads)
        with np.load(model_dir / self.card["head_file"]) as head:
            self.dense_kernel = head["dense_kernel"].reshape(-1)
            self.dense_bias = float(head["dense_bias"].reshape(-1)[0])
        self.gate = XrayGate.load(model_dir / self.card["head_file"])
        self.threshold = float(self.card["threshold"])
        self.model_version = str(self.card["model_version"])
        self.preprocessing = Preprocessing(**self.card.get("preprocessing_parameters", {}))

    @classmethod
    def load(cls, model_dir: Path | None = None, threads: int | None = None) -> "Predictor":
        if threads is None:
            threads = int(os.environ.get("ORT_THREADS", "0"))
        return cls(Path(model_dir or os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR), threads)

    def predict(self, decoded: DecodedImage, check_xray: bool = True) -> Prediction:
        """Score one decoded image; raises ImageRejected (422) if it is not a chest X-ray."""
        started = time.perf_counter()
        gray224 = resize_to_input(decoded.gray)
        logits, activations = run_model(self.session, to_model_input(gray224, self.preprocessing)[None])
        activation = activations[0]
        if check_xray:
            self.gate.check(decoded.colourfulness, gray224, activation.mean(axis=(0, 1)))
        probability = float(sigmoid(logits[0]))
        return Prediction(
            probability=probability,
            label=label_for(probability, self.threshold),
            threshold=self.threshold,
            model_version=self.model_version,
            cam=gradcam(activation, self.dense_kernel),
            inference_ms=(time.perf_counter() - started) * 1000.0,
        )
