"""The one path from a decoded X-ray to model input.

Training, the CLI, the API and the web page all call `to_model_input` on the grayscale
pixels that `pneumoscan.decode` produces, so the model sees at serving exactly what it saw
in training. Every image is first brought to the training images' own 224x224 (the size the
data set was saved at, and where the non-X-ray gate measures its statistics); the model's
`Preprocessing` (stored in its model card) then says what happens after that. Augmentation
(training only) acts on the 224x224 grayscale image before `to_model_input`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

CANONICAL_SIZE = 224
CLAHE_TILES = (8, 8)
CORNER_WIDTH_PER_HEIGHT = 2.5


@dataclass(frozen=True)
class Preprocessing:
    """What a model expects after the canonical 224x224 grayscale image: its four corners
    blanked (boxes this share of the height tall, 0 = none), contrast normalisation (CLAHE with
    this clip limit, 0 = none) and then its input resolution."""

    input_size: int = 224
    clahe_clip: float = 2.0
    corner_mask: float = 0.0

    def describe(self) -> dict[str, str]:
        contrast = (
            f"CLAHE clip {self.clahe_clip}, tiles {CLAHE_TILES[0]}x{CLAHE_TILES[1]}"
            if self.clahe_clip
            else "none"
        )
        corners = (
            f"blanked to 0 in boxes {self.corner_mask:.0%} of the height tall, "
            f"{CORNER_WIDTH_PER_HEIGHT * self.corner_mask:.0%} of the width wide"
            if self.corner_mask
            else "kept"
        )
        return {
            "decode": "EXIF orientation applied, converted to 8-bit grayscale",
            "canonical": f"{CANONICAL_SIZE}x{CANONICAL_SIZE}, aspect ratio not kept, "
            "INTER_AREA down / INTER_LINEAR up",
            "corners": corners,
            "contrast": contrast,
            "resize": f"{self.input_size}x{self.input_size}, INTER_AREA",
            "channels": "gray replicated to 3 channels",
            "scaling": "Xception: x / 127.5 - 1",
        }

    def as_dict(self) -> dict[str, float | int]:
        """The fields for a model card; `corner_mask` only when set, so cards written before it
        existed read and write back unchanged."""
        fields = asdict(self)
        if not self.corner_mask:
            del fields["corner_mask"]
        return fields


def resize_to_input(gray: np.ndarray, size: int = CANONICAL_SIZE) -> np.ndarray:
    """Resize 8-bit grayscale pixels to a square, as the training set was made."""
    if gray.shape == (size, size):
        return gray
    shrinking = gray.shape[0] * gray.shape[1] > size * size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interpolation)


def blank_corners(gray: np.ndarray, height_share: float) -> np.ndarray:
    """Set the four corner boxes to 0: X-ray machines print clock times, kV codes and side
    letters there, and their rate differs between classes and sites, so a network could learn
    the print instead of the lungs."""
    height = round(gray.shape[0] * height_share)
    width = round(gray.shape[1] * height_share * CORNER_WIDTH_PER_HEIGHT)
    blanked = gray.copy()
    for rows in (slice(0, height), slice(gray.shape[0] - height, None)):
        for columns in (slice(0, width), slice(gray.shape[1] - width, None)):
            blanked[rows, columns] = 0
    return blanked


def normalise_contrast(gray: np.ndarray, clip: float) -> np.ndarray:
    """CLAHE evens out exposure differences between X-ray machines and hospitals."""
    return cv2.createCLAHE(clipLimit=clip, tileGridSize=CLAHE_TILES).apply(gray)


def scale_for_xception(gray: np.ndarray) -> np.ndarray:
    """Replicate gray to 3 channels and scale to [-1, 1] as Xception expects."""
    scaled = gray.astype(np.float32) / 127.5 - 1.0
    return np.repeat(scaled[:, :, None], 3, axis=2)


def to_model_input(gray: np.ndarray, preprocessing: Preprocessing = Preprocessing()) -> np.ndarray:
    """8-bit grayscale pixels of any size -> float32 (size, size, 3) model input."""
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"expected 2-D uint8 grayscale pixels, got {gray.dtype} {gray.shape}")
    canonical = resize_to_input(gray)
    if preprocessing.corner_mask:
        canonical = blank_corners(canonical, preprocessing.corner_mask)
    if preprocessing.clahe_clip:
        canonical = normalise_contrast(canonical, preprocessing.clahe_clip)
    return scale_for_xception(resize_to_input(canonical, preprocessing.input_size))
