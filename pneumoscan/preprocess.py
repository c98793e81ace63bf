"""The one path from a decoded X-ray to model input.

Training, the CLI, the API and the web page all call `to_model_input` on the grayscale
pixels that `pneumoscan.decode` produces, so the model sees at serving exactly what it saw
in training. Augmentation (training only) acts on the 224x224 grayscale image *before*
`normalise_contrast`, so contrast normalisation is applied identically everywhere.
"""

from __future__ import annotations

import cv2
import numpy as np

INPUT_SIZE = 224
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)

PREPROCESSING = {
    "decode": "EXIF orientation applied, converted to 8-bit grayscale",
    "resize": f"{INPUT_SIZE}x{INPUT_SIZE}, aspect ratio not kept, cv2 INTER_AREA down / INTER_LINEAR up",
    "contrast": f"CLAHE clip {CLAHE_CLIP_LIMIT}, tiles {CLAHE_TILES[0]}x{CLAHE_TILES[1]}",
    "channels": "gray replicated to 3 channels",
    "scaling": "Xception: x / 127.5 - 1",
}


def resize_to_input(gray: np.ndarray) -> np.ndarray:
    """Resize 8-bit grayscale pixels to the model's square input, as the training set was made."""
    if gray.shape == (INPUT_SIZE, INPUT_SIZE):
        return gray
    shrinking = gray.shape[0] * gray.shape[1] > INPUT_SIZE * INPUT_SIZE
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)


def normalise_contrast(gray224: np.ndarray) -> np.ndarray:
    """CLAHE evens out exposure differences between X-ray machines and hospitals."""
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    return clahe.apply(gray224)


def scale_for_xception(gray224: np.ndarray) -> np.ndarray:
    """Replicate gray to 3 channels and scale to [-1, 1] as Xception expects."""
    scaled = gray224.astype(np.float32) / 127.5 - 1.0
    return np.repeat(scaled[:, :, None], 3, axis=2)


def to_model_input(gray: np.ndarray) -> np.ndarray:
    """8-bit grayscale pixels of any size -> float32 (224, 224, 3) model input."""
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"expected 2-D uint8 grayscale pixels, got {gray.dtype} {gray.shape}")
    return scale_for_xception(normalise_contrast(resize_to_input(gray)))
