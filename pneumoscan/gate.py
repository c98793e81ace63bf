"""Is this a chest X-ray at all? Refuse photographs, documents, screenshots and blank images.

Everything here is fitted on training X-rays only (`pneumoscan.training.fit_gate`), so it is
a one-class test: an upload is refused when it falls outside what chest X-rays look like.
- colour: X-rays are gray; a colourful image is not one;
- image statistics of the 224x224 grayscale image: contrast (blank, near-uniform), fine
  texture (text, noise, foliage), smoothness (gradients, drawings), near-white area (pages),
  left-right symmetry (a chest is roughly symmetric), and the correlation of the coarse
  layout with the mean training X-ray (lungs dark, mediastinum and edges bright), each
  within the range seen on training X-rays;
- the direction of the model's own pooled features: a squared Mahalanobis distance in the principal subspace
  of the training X-rays plus the residual outside it, each scaled by its training mean.
The refusal rates on validation X-rays and on non-X-rays are in the model card.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from pneumoscan.errors import ImageRejected
from pneumoscan.formats import ACCEPTED_LABELS

NOT_XRAY = "this does not look like a chest X-ray"
STATISTICS = ("contrast", "texture", "white_area", "symmetry", "layout")
WHITE_LEVEL = 245
LAYOUT_SIZE = 16


def layout(gray224: np.ndarray) -> np.ndarray:
    """The image at 16x16, standardised: where it is bright and dark, nothing finer."""
    small = cv2.resize(gray224.astype(np.float32), (LAYOUT_SIZE, LAYOUT_SIZE), interpolation=cv2.INTER_AREA)
    return (small - small.mean()) / max(float(small.std()), 1e-6)


def image_statistics(gray224: np.ndarray, template: np.ndarray) -> np.ndarray:
    """[contrast, texture, white_area, symmetry, layout] of 224x224 8-bit grayscale pixels;
    `template` is the mean standardised layout of the training X-rays."""
    pixels = gray224.astype(np.float32)
    texture = float(np.abs(cv2.Laplacian(pixels, cv2.CV_32F)).mean())
    coarse = layout(gray224)
    symmetry = float((coarse * coarse[:, ::-1]).mean())
    match = float((coarse * template).mean() / max(float(template.std()), 1e-6))
    return np.array(
        [pixels.std(), texture, float((gray224 > WHITE_LEVEL).mean()), symmetry, match], dtype=np.float32
    )


def unit_rows(pooled: np.ndarray) -> np.ndarray:
    """Each feature vector scaled to length 1. The gate compares directions: a blank or faint
    image has small features close to the X-rays' mean in length-sensitive distances, but its
    direction is not an X-ray's (with lengths kept, faces and blanks measured nearer the training
    X-rays than real external X-rays did)."""
    return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class GateReading:
    """An image's STATISTICS and pooled-feature distance from the training X-rays."""

    statistics: np.ndarray
    feature_distance: float

    def as_dict(self) -> dict[str, float]:
        return {
            **dict(zip(STATISTICS, map(float, self.statistics), strict=True)),
            "feature_distance": self.feature_distance,
        }


@dataclass(frozen=True)
class XrayGate:
    mean: np.ndarray
    components: np.ndarray
    component_var: np.ndarray
    residual_var: float
    max_score: float
    max_colourfulness: float
    low: np.ndarray
    high: np.ndarray
    template: np.ndarray

    @classmethod
    def load(cls, path: Path) -> XrayGate:
        with np.load(path) as saved:
            return cls(**{f.name: saved[f"gate_{f.name}"] for f in fields(cls)})

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"gate_{f.name}": np.asarray(getattr(self, f.name)) for f in fields(self)}

    def feature_distance(self, pooled: np.ndarray) -> np.ndarray:
        """Distance of pooled features (N, C), as directions, from the training X-rays."""
        centred = unit_rows(pooled) - self.mean
        projected = centred @ self.components.T
        residual = centred - projected @ self.components
        return (
            np.mean(projected**2 / self.component_var, axis=-1)
            + np.sum(residual**2, axis=-1) / self.residual_var
        )

    def measure(self, gray224: np.ndarray, pooled: np.ndarray) -> GateReading:
        """What the gate looks at, kept with every result so drift can be followed per week."""
        return GateReading(
            statistics=image_statistics(gray224, self.template),
            feature_distance=float(self.feature_distance(pooled[None])[0]),
        )

    def check(self, colourfulness: float, reading: GateReading) -> None:
        """Raise ImageRejected (422) with the reason when the image is not a chest X-ray."""
        if colourfulness > self.max_colourfulness:
            raise ImageRejected(f"{NOT_XRAY}: it is a colour image", 422)
        stats = reading.statistics
        if stats[0] < self.low[0]:
            raise ImageRejected(f"{NOT_XRAY}: the image is blank or nearly uniform", 422)
        if np.any(stats < self.low) or np.any(stats > self.high) or reading.feature_distance > self.max_score:
            raise ImageRejected(f"{NOT_XRAY}; upload a frontal chest radiograph ({ACCEPTED_LABELS})", 422)
