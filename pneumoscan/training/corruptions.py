"""How X-rays arrive over telemedicine: blurred, re-compressed, downscaled, noisy, cropped,
re-exposed, tilted, or photographed off a film or screen with a phone; and the other families
of MedMNIST-C (Di Salvo et al. 2024), a corruption benchmark of medical images: speckle,
impulse and shot noise, pixelation, low contrast and brightness.

Each family maps 224x224 uint8 grayscale pixels and a random generator to a corrupted copy of
the same shape. Training draws from them as augmentation (`augment.py`); the robustness report
(`robustness.py`) scores the external set under each, so what is trained against is what is
measured.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Corruption = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def jpeg(gray: np.ndarray, quality: int) -> np.ndarray:
    """Re-encode as a JPEG of this quality, as messaging apps and PACS exports do."""
    ok, data = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def downscale(gray: np.ndarray, side: int) -> np.ndarray:
    """Shrink to `side` pixels and back: the detail a small thumbnail keeps."""
    size = gray.shape[::-1]
    small = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)


def blur(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(gray, (0, 0), sigmaX=rng.uniform(0.5, 2.0))


def jpeg_recompress(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return jpeg(gray, int(rng.integers(20, 91)))


def downscale_upscale(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return downscale(gray, int(rng.integers(64, 160)))


def sensor_noise(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(gray.astype(np.float32) + rng.normal(0, rng.uniform(3, 12), gray.shape))


def resized_crop(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of 75-100% of the area, resized back (a differently framed chest)."""
    height, width = gray.shape
    scale, aspect = rng.uniform(0.75, 1.0), rng.uniform(0.9, 1.1)
    crop_h = min(height, round(height * np.sqrt(scale / aspect)))
    crop_w = min(width, round(width * np.sqrt(scale * aspect)))
    top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
    return cv2.resize(
        gray[top : top + crop_h, left : left + crop_w], (width, height), interpolation=cv2.INTER_LINEAR
    )


def gamma(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(255.0 * np.power(gray / 255.0, rng.uniform(0.6, 1.6)))


def perspective(gray: np.ndarray, rng: np.random.Generator, jitter: float = 0.06) -> np.ndarray:
    """Each corner moved by up to `jitter` of the side: a film or screen not quite square to the camera."""
    height, width = gray.shape
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    moved = corners + rng.uniform(-jitter, jitter, corners.shape).astype(np.float32) * [width, height]
    matrix = cv2.getPerspectiveTransform(corners, moved.astype(np.float32))
    return cv2.warpPerspective(gray, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def phone_photo(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A phone photo of a film or screen: tilt up to 7 degrees, zoom, uneven exposure, sensor
    noise and a JPEG of quality about 70."""
    height, width = gray.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-7, 7), rng.uniform(0.9, 1.1))
    pixels = cv2.warpAffine(gray, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (cols / width - 0.5) + np.sin(angle) * (rows / height - 0.5)) * rng.uniform(
        0.2, 0.5
    )
    vignette = ((cols / width - 0.5) ** 2 + (rows / height - 0.5) ** 2) * rng.uniform(0.2, 0.6)
    pixels = pixels * (1.0 + ramp - vignette) + rng.uniform(-15, 15)
    pixels += rng.normal(0, rng.uniform(2, 6), pixels.shape)
    return jpeg(_to_uint8(pixels), int(rng.integers(60, 81)))


def speckle_noise(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise that grows with the signal, as in ultrasound and some detector read-outs."""
    pixels = gray.astype(np.float32)
    return _to_uint8(pixels * (1.0 + rng.normal(0, rng.uniform(0.05, 0.2), gray.shape)))


def impulse_noise(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: a share of pixels (0.5-3%) stuck at black or white (dead or hot pixels)."""
    view = gray.copy()
    stuck = rng.random(gray.shape) < rng.uniform(0.005, 0.03)
    view[stuck] = np.where(rng.random(int(stuck.sum())) < 0.5, 0, 255)
    return view


def shot_noise(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise of a low photon count (30-120 at full white): a low-dose exposure."""
    photons = rng.uniform(30, 120)
    return _to_uint8(rng.poisson(gray.astype(np.float32) / 255.0 * photons) / photons * 255.0)


def pixelate(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blocks of 2-5 pixels: a thumbnail enlarged without smoothing."""
    size = gray.shape[::-1]
    side = int(gray.shape[0] / rng.uniform(2, 5))
    small = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, size, interpolation=cv2.INTER_NEAREST)


def contrast(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast cut to 40-80% around the mean: a washed-out print or a dim screen."""
    pixels = gray.astype(np.float32)
    return _to_uint8((pixels - pixels.mean()) * rng.uniform(0.4, 0.8) + pixels.mean())


def brightness(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The whole image 15-40 grey levels lighter or darker: an over- or under-exposed copy."""
    return _to_uint8(gray.astype(np.float32) + rng.choice([-1, 1]) * rng.uniform(15, 40))


FAMILIES: dict[str, Corruption] = {
    "blur": blur,
    "jpeg": jpeg_recompress,
    "downscale": downscale_upscale,
    "noise": sensor_noise,
    "resized_crop": resized_crop,
    "gamma": gamma,
    "perspective": perspective,
    "phone_photo": phone_photo,
}

MEDMNIST_C: dict[str, Corruption] = {
    "speckle_noise": speckle_noise,
    "impulse_noise": impulse_noise,
    "shot_noise": shot_noise,
    "pixelate": pixelate,
    "contrast": contrast,
    "brightness": brightness,
}
"""MedMNIST-C's families that FAMILIES lacks (its Gaussian noise, blur, JPEG and gamma are there)."""

FAMILY_SETS: dict[str, dict[str, Corruption]] = {
    "telemedicine": FAMILIES,
    "medmnist-c": {**FAMILIES, **MEDMNIST_C},
}


def family_set(name: str) -> tuple[Corruption, ...]:
    """The corruptions training draws from under this name of FAMILY_SETS."""
    if name not in FAMILY_SETS:
        raise ValueError(f"corruption families are {' or '.join(FAMILY_SETS)}, not {name!r}")
    return tuple(FAMILY_SETS[name].values())
