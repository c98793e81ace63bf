"""The served model: ONNX Runtime, one call gives the logits (pneumonia, viral) and the last activation.

No TensorFlow here: a worker holding this fits a 512 MB instance. Load once per process
(`Predictor.load`), then `predict` per image (`predict_many` for a folder).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from pneumoscan.decode import DecodedImage
from pneumoscan.errors import ImageRejected
from pneumoscan.gate import GateReading, XrayGate
from pneumoscan.gradcam import gradcam
from pneumoscan.model_card import CARD_FILE, Calibration, ModelCard
from pneumoscan.preprocess import resize_to_input, to_model_input

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "CARD_FILE",
    "DEFAULT_MODEL_DIR",
    "Estimate",
    "ModelOutputs",
    "Predictor",
    "create_session",
    "model_dir_in_use",
    "run_model",
    "sigmoid",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "model_weights"


@dataclass(frozen=True)
class Estimate:
    """The model's answer for one image: the served (calibrated) probability, the raw logit it
    came from, the label at the threshold in use, the Grad-CAM map (its native grid, in [0, 1]),
    what the non-X-ray gate measured (for drift), and the subtype: the calibrated probability that
    the pneumonia is viral (for every image, where the model has the head) and its label, given
    only where the label is PNEUMONIA."""

    probability: float
    logit: float
    label: str
    threshold: float
    model_version: str
    cam: np.ndarray
    inference_ms: float
    gate_reading: GateReading
    viral_probability: float | None = None
    subtype: str | None = None


def sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


def calibrated_probability(logit: float, calibration: Calibration) -> float:
    """The one place a logit becomes the probability that is served and thresholded."""
    return float(sigmoid(np.float64(calibration.scale * logit + calibration.bias)))


def model_dir_in_use(model_dir: Path | None = None) -> Path:
    """The model folder: the one given, else `$MODEL_DIR`, else the committed `model_weights/`."""
    return Path(model_dir or os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR)


def has_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU reports AVX-512 VNNI or AVX-VNNI (Linux's flags). False where unknown
    (another OS, no such file), which keeps the exact but slower kernel."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flag_lines = (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags"))
    flags = next(flag_lines, [])
    return "avx512_vnni" in flags or "avx_vnni" in flags


def create_session(model_path: Path, threads: int = 0) -> ort.InferenceSession:
    """ONNX Runtime is imported only here: gunicorn's master imports the app's package for the
    worker class and then forks, and a worker forked from a process that had imported ONNX
    Runtime aborts (`std::system_error`) or hangs as it exits.
    One session per process; `threads` 0 lets ONNX Runtime use every core. The web app gives
    each worker cores / workers threads, so workers do not compete for a core; with more than
    one thread, ONNX Runtime's default spin-waiting between operators is kept (it measured faster).

    `session.x64quantprecision`: on x86 CPUs without VNNI (AVX2-only, such as many AMD EPYC
    hosts) ONNX Runtime's fast uint8 x int8 convolution saturates its 16-bit intermediate sums;
    there the served int8 graph moved logits by up to 5.5 and external AUC from 0.9817 to 0.9792.
    The option makes ONNX Runtime convert the weights to uint8 and use the exact uint8 x uint8
    kernel (18-19 against 15-16 ms per image at batch 8 there). VNNI sums four products in 32
    bits and is exact, but ONNX Runtime converts on AVX-512 VNNI CPUs too, where it costs 8.5
    against 5.5 ms per image: so the option is set only where `has_vnni` is not known true."""
    import onnxruntime as ort  # here, not at import: see below

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not has_vnni():
        options.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class ModelOutputs(NamedTuple):
    """One session call: pneumonia logits (N,), viral logits (N,) or None for a model without the
    subtype head, and last activations (N, H, W, C)."""

    logit: np.ndarray
    viral_logit: np.ndarray | None
    activation: np.ndarray


def run_model(session: ort.InferenceSession, batch: np.ndarray) -> ModelOutputs:
    """Model inputs (N, size, size, 3) -> logits and activations, in one call."""
    logits, activations = session.run(["logit", "activation"], {session.get_inputs()[0].name: batch})
    logits = logits.reshape(len(batch), -1)
    return ModelOutputs(logits[:, 0], logits[:, 1] if logits.shape[1] > 1 else None, activations)


class Predictor:
    """The committed model with its card, Grad-CAM head weights and non-X-ray gate."""

    def __init__(self, model_dir: Path, threads: int = 0, card: ModelCard | None = None) -> None:
        """`card` defaults to the folder's own; publishing passes the card it is about to write."""
        self.card = card or ModelCard.load(model_dir)
        self.session = create_session(model_dir / self.card.model_file, threads)
        with np.load(model_dir / self.card.head_file) as head:
            self.dense_kernel = head["dense_kernel"].reshape(-1)
        self.gate = XrayGate.load(model_dir / self.card.head_file)

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def model_version(self) -> str:
        return self.card.model_version

    @classmethod
    def load(cls, model_dir: Path | None = None, threads: int | None = None) -> Predictor:
        if threads is None:
            threads = int(os.environ.get("ORT_THREADS", "0"))
        return cls(model_dir_in_use(model_dir), threads)

    def predict(
        self, decoded: DecodedImage, check_xray: bool = True, threshold: float | None = None
    ) -> Estimate:
        """Estimate one decoded image; raises ImageRejected (422) if it is not a chest X-ray.
        `threshold` (a site's own, see the web app) replaces the card's when given."""
        (result,) = self.predict_many([decoded], check_xray, threshold)
        if isinstance(result, ImageRejected):
            raise result
        return result

    def predict_many(
        self, decoded: Sequence[DecodedImage], check_xray: bool = True, threshold: float | None = None
    ) -> list[Estimate | ImageRejected]:
        """Several images in one ONNX Runtime call, for folders: about a fifth faster per image on
        2 cores at 8 a call than one at a time. Each image gets exactly the estimate it gets alone
        (the int8 graph's quantization scales are fixed, so no image depends on its neighbours);
        a refused image's place holds its ImageRejected. `inference_ms` is the image's share of
        the call plus its own Grad-CAM and gate."""
        started = time.perf_counter()
        grays = [resize_to_input(image.gray) for image in decoded]
        inputs = np.stack([to_model_input(gray, self.card.preprocessing) for gray in grays])
        outputs = run_model(self.session, inputs)
        share_ms = (time.perf_counter() - started) * 1000.0 / len(decoded)
        threshold = self.card.threshold if threshold is None else threshold
        results: list[Estimate | ImageRejected] = []
        for index, (image, gray224) in enumerate(zip(decoded, grays, strict=True)):
            try:
                results.append(
                    self._estimate(image, gray224, outputs, index, check_xray, threshold, share_ms)
                )
            except ImageRejected as exc:
                results.append(exc)
        return results

    def _estimate(
        self,
        decoded: DecodedImage,
        gray224: np.ndarray,
        outputs: ModelOutputs,
        index: int,
        check_xray: bool,
        threshold: float,
        share_ms: float,
    ) -> Estimate:
        """Image `index` of one session call: gate, calibrated probability, label, subtype, Grad-CAM."""
        started = time.perf_counter()
        activation = outputs.activation[index]
        reading = self.gate.measure(gray224, activation.mean(axis=(0, 1)))
        if check_xray:
            self.gate.check(decoded.colourfulness, reading)
        logit = float(outputs.logit[index])
        probability = calibrated_probability(logit, self.card.calibration)
        label = self.card.label(probability, threshold)
        viral_probability = subtype = None
        if self.card.subtype is not None and outputs.viral_logit is not None:
            viral_probability = calibrated_probability(
                float(outputs.viral_logit[index]), self.card.subtype.calibration
            )
            subtype = (
                self.card.subtype.label(viral_probability) if label == self.card.positive_class else None
            )
        return Estimate(
            probability=probability,
            logit=logit,
            label=label,
            threshold=threshold,
            model_version=self.card.model_version,
            cam=gradcam(activation, self.dense_kernel),
            inference_ms=share_ms + (time.perf_counter() - started) * 1000.0,
            gate_reading=reading,
            viral_probability=viral_probability,
            subtype=subtype,
        )
