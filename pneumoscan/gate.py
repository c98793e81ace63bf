"""Is this a chest X-ray at all? Refuse photographs, documents, screenshots and blank images.

Two cheap image statistics catch the obvious cases (colour, no contrast); the rest is a
one-class test on the model's own pooled features: a squared Mahalanobis distance in the
principal subspace of the training X-rays plus the residual outside it, each scaled by its
mean on training X-rays. Fitted on X-rays only (`pneumoscan.training.fit_gate`); the refusal
threshold and its measured rates are in the model card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumoscan.errors import ImageRejected

NOT_XRAY = "this does not look like a chest X-ray"


@dataclass(frozen=True)
class XrayGate:
    mean: np.ndarray
    components: np.ndarray
    component_var: np.ndarray
    residual_var: float
    threshold: float
    max_colourfulness: float
    min_contrast: float

    @classmethod
    def load(cls, path: Path) -> "XrayGate":
        with np.load(path) as saved:
            return cls(**{name: saved[f"gate_{name}"] for name in cls.__dataclass_fields__})

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"gate_{name}": np.asarray(getattr(self, name)) for name in self.__dataclass_fields__}

    def score(self, pooled: np.ndarray) -> np.ndarray:
        """Distance of pooled features (N, C) from the training X-rays; about 2 for an X-ray."""
        centred = pooled - self.mean
        projected = centred @ self.components.T
        residual = centred - projected @ self.components
        return np.mean(projected**2 / self.component_var, axis=-1) + np.sum(residual**2, axis=-1) / self.residual_var

    def check(self, colourfulness: float, gray224: np.ndarray, pooled: np.ndarray) -> None:
        """Raise ImageRejected (422) with the reason when the image is not a chest X-ray."""
        if colourfulness > self.max_colourfulness:
            raise ImageRejected(f"{NOT_XRAY}: it is a colour image", 422)
        if float(gray224.std()) < self.min_contrast:
            raise ImageRejected(f"{NOT_XRAY}: the image is blank or nearly uniform", 422)
        if float(self.score(pooled[None])[0]) > self.threshold:
            raise ImageRejected(f"{NOT_XRAY}; upload a frontal chest radiograph", 422)
