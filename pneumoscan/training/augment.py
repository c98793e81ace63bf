"""X-ray-appropriate augmentation of 224x224 grayscale pixels, before `to_model_input`.

Small rotations, shifts and zoom (patients are not always centred or straight), brightness,
contrast and gamma (exposure varies between machines), and with some chance one of the
corruption families of `corruptions.py` (how images arrive over telemedicine). No horizontal
flip: the heart sits on the left, and a mirrored chest is not a chest the model will be shown.
"""

from __future__ import annotations

import cv2
import numpy as np

from pneumoscan.training.corruptions import FAMILIES

MAX_ROTATION_DEG = 8.0
MAX_SHIFT = 0.06
ZOOM_RANGE = (0.92, 1.12)
BRIGHTNESS = 0.08
CONTRAST_RANGE = (0.85, 1.15)
GAMMA_RANGE = (0.8, 1.25)
CORRUPTIONS = tuple(FAMILIES.values())


def augment(gray: np.ndarray, rng: np.random.Generator, corruption: float = 0.0) -> np.ndarray:
    """One random view of `gray` (uint8, square), same shape and dtype; with chance `corruption`
    one randomly chosen corruption family is applied on top."""
    size = gray.shape[0]
    matrix = cv2.getRotationMatrix2D(
        (size / 2, size / 2), rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG), rng.uniform(*ZOOM_RANGE)
    )
    matrix[:, 2] += rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * size
    moved = cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    pixels = moved.astype(np.float32) / 255.0
    pixels = np.power(pixels, rng.uniform(*GAMMA_RANGE))
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(*CONTRAST_RANGE) + mean + rng.uniform(-BRIGHTNESS, BRIGHTNESS)
    view = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < corruption:
        view = CORRUPTIONS[rng.integers(len(CORRUPTIONS))](view, rng)
    return view
