"""Bytes of an uploaded or stored X-ray -> 8-bit grayscale pixels, or a clear refusal.

The format is decided by the content, never by the file name. Every caller (training,
CLI, API, page) goes through `decode_image`, then `pneumoscan.preprocess.to_model_input`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from pneumoscan.errors import ImageRejected

MIN_SIDE = 64
MAX_PIXELS = 50_000_000

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class DecodedImage:
    """Grayscale pixels plus what the app records and the non-X-ray gate needs."""

    gray: np.ndarray
    source_format: str
    colourfulness: float

    @property
    def width(self) -> int:
        return int(self.gray.shape[1])

    @property
    def height(self) -> int:
        return int(self.gray.shape[0])


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler-Suesstrunk colourfulness: about 0 for an X-ray, tens for a photograph."""
    r, g, b = (rgb[:, :, i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _to_gray_uint8(image: Image.Image) -> tuple[np.ndarray, float]:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.float64)
        low, high = float(wide.min()), float(wide.max())
        span = high - low if high > low else 1.0
        return np.round((wide - low) / span * 255.0).astype(np.uint8), 0.0
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    rgb = np.asarray(image.convert("RGB"))
    gray = np.asarray(image.convert("L"))
    return np.ascontiguousarray(gray), colourfulness(rgb)


def decode_raster(data: bytes) -> DecodedImage:
    """Decode a JPEG or PNG with its EXIF orientation applied."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ("JPEG", "PNG", "MPO"):
            raise ImageRejected(f"unsupported image format {image.format}; use JPEG, PNG or DICOM", 415)
        if getattr(image, "n_frames", 1) > 1 and image.format == "PNG":
            raise ImageRejected("animated images are not supported; upload a single X-ray", 415)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageRejected(f"image of {width}x{height} pixels is too large to process", 422)
        image.load()
        image = ImageOps.exif_transpose(image)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image claims too many pixels to decode safely", 422) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("the image file is damaged or truncated and cannot be read", 422) from exc
    gray, colour = _to_gray_uint8(image)
    return DecodedImage(gray=gray, source_format=str(image.format or "JPEG").lower(), colourfulness=colour)


def decode_image(data: bytes) -> DecodedImage:
    """Bytes -> grayscale pixels; raises ImageRejected with a message a person can act on."""
    if not data:
        raise ImageRejected("the uploaded file is empty", 400)
    decoded = decode_raster(data)
    if min(decoded.gray.shape) < MIN_SIDE:
        raise ImageRejected(f"image is {decoded.width}x{decoded.height}; at least {MIN_SIDE} px a side is needed", 422)
    return decoded
