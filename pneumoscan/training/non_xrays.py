"""Images that are not chest X-rays, to measure the gate: pictures that ship with scikit-image
and scikit-learn (photographs, microscopy, text, a CT phantom), crops of them, and synthetic
documents, screenshots, blank and near-uniform images. Nothing is downloaded."""

from __future__ import annotations

import io
from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image

SKIMAGE_PICTURES = (
    "astronaut",
    "binary_blobs",
    "brick",
    "camera",
    "cat",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "shepp_logan_phantom",
    "text",
)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == bool:
        return pixels.astype(np.uint8) * 255
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        return np.uint8((pixels - low) / max(high - low, 1e-9) * 255)
    return pixels


def packaged_pictures() -> Iterator[tuple[str, np.ndarray]]:
    import skimage.data
    from sklearn.datasets import load_sample_images

    for name in SKIMAGE_PICTURES:
        yield name, _to_uint8(getattr(skimage.data, name)())
    for index, picture in enumerate(load_sample_images().images):
        yield f"sklearn_sample_{index}", picture
    for index, face in enumerate(skimage.data.lfw_subset()[:40]):
        yield f"lfw_face_{index}", cv2.resize(_to_uint8(face), (128, 128), interpolation=cv2.INTER_CUBIC)


def crops(name: str, pixels: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """The picture plus its four quadrant crops, where they are at least 96 px."""
    yield name, pixels
    height, width = pixels.shape[:2]
    if min(height, width) >= 192:
        for row in range(2):
            for col in range(2):
                yield (
                    f"{name}_crop{row}{col}",
                    pixels[
                        row * height // 2 : (row + 1) * height // 2, col * width // 2 : (col + 1) * width // 2
                    ],
                )


def synthetic(rng: np.random.Generator, count: int = 20) -> Iterator[tuple[str, np.ndarray]]:
    """Documents, screenshots, blank, near-uniform, noise and gradient images."""
    for index in range(count):
        page = np.full((700, 500), 255, np.uint8)
        for line in range(rng.integers(8, 30)):
            words = " ".join(["lorem", "ipsum", "dolor", "sit", "amet"][: rng.integers(2, 6)] * 3)
            cv2.putText(page, words, (30, 40 + 22 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1)
        yield f"document_{index}", page

        screen = np.full((600, 900, 3), rng.integers(200, 256, 3), np.uint8)
        for _ in range(rng.integers(3, 10)):
            x, y = rng.integers(0, 800), rng.integers(0, 500)
            cv2.rectangle(
                screen,
                (x, y),
                (x + rng.integers(40, 300), y + rng.integers(20, 120)),
                rng.integers(0, 256, 3).tolist(),
                -1,
            )
            cv2.putText(
                screen, "Settings  File  Help", (x + 5, y + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1
            )
        yield f"screenshot_{index}", screen

        level = int(rng.integers(0, 256))
        yield f"blank_{index}", np.full((300, 300), level, np.uint8)
        yield f"near_uniform_{index}", np.clip(level + rng.normal(0, 2, (300, 300)), 0, 255).astype(np.uint8)
        yield f"noise_{index}", rng.integers(0, 256, (256, 256), dtype=np.uint8)
        ramp = np.linspace(0, 255, 256, dtype=np.float32)
        yield (
            f"gradient_{index}",
            np.uint8(np.outer(ramp, np.ones(256)) if index % 2 else np.outer(np.ones(256), ramp)),
        )


def non_xray_uploads(seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """(name, PNG bytes) of every non-X-ray test image."""
    for name, pixels in packaged_pictures():
        for crop_name, crop in crops(name, pixels):
            yield crop_name, _png(np.ascontiguousarray(crop))
    for name, pixels in synthetic(np.random.default_rng(seed)):
        yield name, _png(pixels)
