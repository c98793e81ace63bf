"""Bytes of an uploaded or stored X-ray -> 8-bit grayscale pixels, or a clear refusal.

The format is decided by the content (magic bytes), never by the file name. Every caller
(training, CLI, API, page) goes through `decode_image`, then
`pneumoscan.preprocess.to_model_input`.

Choices, and why:
- Size is checked from the header before any pixel is decoded, so a small file claiming
  40000x40000 pixels is refused without allocating memory for it.
- Transparent areas are composited on black: X-rays exported with an alpha channel are
  rare, and where transparency occurs it is padding around the film, whose natural
  colour is the black of an unexposed background; white would read as a bright border.
- 16-bit grayscale PNG is stretched from its own minimum..maximum to 0..255: the PNG header
  does not say how many of the 16 bits are used (12-bit detector values in 16-bit
  containers are common), and dividing by 257 would leave those nearly black.
- Animated PNGs are refused (415): which frame is the X-ray is a guess. A JPEG carrying
  extra frames (MPO, as some cameras write) is read as its primary image, the one every
  viewer shows; the other frames are previews or stereo views of it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import ExifTags, Image

from pneumoscan import dicom
from pneumoscan.errors import ImageRejected
from pneumoscan.formats import ACCEPTED, detect

MIN_SIDE = 64
MAX_PIXELS = 50_000_000

_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "a Microsoft Office document"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xffO\xffQ", "a JPEG 2000 image"),
    (b"\x00\x00\x01\x00", "an icon file"),
)


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
    """Hasler-Suesstrunk colourfulness: about 0 for an X-ray, tens for a photograph.

    Very large images are sampled on a regular grid of about a million pixels: the
    statistic is a mean and spread, so this changes it negligibly and keeps it fast.
    Gray pictures stored as RGB (equal channels, most X-ray JPEGs) are exactly 0 and are
    answered by a cheap comparison.
    """
    if (rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all():
        return 0.0
    step = max(1, math.ceil(math.sqrt(rgb.shape[0] * rgb.shape[1] / 1_000_000)))
    r, g, b = (rgb[::step, ::step, i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def check_dimensions(width: int, height: int) -> None:
    """Refuse, from the header alone, images too large to decode safely or too small to read."""
    if width * height > MAX_PIXELS:
        raise ImageRejected(
            f"the image is too large: {width}x{height} pixels is over the limit of "
            f"{MAX_PIXELS // 1_000_000} megapixels",
            422,
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(
            f"the image is too small: {width}x{height} pixels; at least {MIN_SIDE} pixels a side is needed",
            422,
        )


def decode_image(data: bytes) -> DecodedImage:
    """Bytes -> grayscale pixels; raises ImageRejected with a message a person can act on."""
    if not data:
        raise ImageRejected("the uploaded file is empty", 400)
    fmt = detect(data)
    if fmt is None:
        raise ImageRejected(_describe_unsupported(data), 415)
    return DECODERS[fmt.name](data)


def _decode_dicom(data: bytes) -> DecodedImage:
    dataset = dicom.parse(data)
    if dataset is None:
        raise ImageRejected(_describe_unsupported(data), 415)
    check_dimensions(*dicom.validate(dataset))
    return _from_pixels(dicom.to_pixels(dataset), "dicom")


def _decode_raster(data: bytes, fmt: str) -> DecodedImage:
    """Decode a JPEG or PNG once, refusing bombs before and truncation during decoding."""
    if fmt == "JPEG" and not _jpeg_has_end(data):
        raise ImageRejected(
            "the JPEG file is truncated (it has no end marker); upload the complete file", 422
        )
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
        frames = getattr(image, "n_frames", 1)
        if frames > 1 and fmt == "PNG":
            raise ImageRejected(
                f"this is an animated PNG with {frames} frames; upload a single still X-ray", 415
            )
        check_dimensions(*image.size)
        image.load()
        orientation = _orientation(image)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"the image is too large: it claims more than the limit of {MAX_PIXELS // 1_000_000} megapixels",
            422,
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(
            f"the {fmt} file is damaged or truncated and cannot be read; upload the complete file", 422
        ) from exc
    return _from_image(image, orientation, fmt.lower())


def _jpeg_has_end(data: bytes) -> bool:
    """True when an end-of-image marker follows the first scan header.

    Walking the marker segments skips an EXIF thumbnail (which has its own end marker);
    entropy-coded data cannot contain FF D9, so a file cut inside its scan has none.
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xDA:
            return data.find(b"\xff\xd9", pos) != -1
        if marker == 0xFF or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            pos += 1 if marker == 0xFF else 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return False


def _orientation(image: Image.Image) -> Image.Transpose | None:
    """The transpose EXIF asks for, as `ImageOps.exif_transpose` would apply it."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return None
    return _ORIENTATION.get(value) if isinstance(value, int) else None


def _from_image(image: Image.Image, orientation: Image.Transpose | None, source_format: str) -> DecodedImage:
    if image.mode.startswith("I"):
        pixels = _stretch_to_uint8(np.asarray(image))
        gray = Image.fromarray(pixels)
        colour = 0.0
    else:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, image.convert("RGBA"))
        gray = image.convert("L")
        if image.mode in ("1", "L"):
            colour = 0.0
        else:
            colour = colourfulness(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
    if orientation is not None:
        gray = gray.transpose(orientation)
    return DecodedImage(gray=np.asarray(gray), source_format=source_format, colourfulness=colour)


def _from_pixels(pixels: np.ndarray, source_format: str) -> DecodedImage:
    """A decoder's uint8 array (2-D gray or H x W x 3 RGB) -> DecodedImage."""
    if pixels.ndim == 2:
        return DecodedImage(gray=np.ascontiguousarray(pixels), source_format=source_format, colourfulness=0.0)
    gray = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))
    return DecodedImage(gray=gray, source_format=source_format, colourfulness=colourfulness(pixels))


def _stretch_to_uint8(wide: np.ndarray) -> np.ndarray:
    """Linearly map the image's own minimum..maximum to 0..255 (uniform images -> 0)."""
    wide = wide.astype(np.float64)
    low, high = float(wide.min()), float(wide.max())
    if high <= low:
        return np.zeros(wide.shape, dtype=np.uint8)
    return np.round((wide - low) * (255.0 / (high - low))).astype(np.uint8)


def _describe_unsupported(data: bytes) -> str:
    """A specific message for content we do not read, naming what it appears to be."""
    what = _binary_kind(data) or _text_kind(data[:4096])
    if what is None:
        return f"this file type is not recognised; {ACCEPTED}"
    return f"this file is {what}, not an X-ray image; {ACCEPTED}"


def _binary_kind(data: bytes) -> str | None:
    if data.startswith((b"GIF87a", b"GIF89a")):
        animated = b"NETSCAPE2.0" in data or b"ANIMEXTS1.0" in data
        return "an animated GIF" if animated else "a GIF image"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "a WebP image"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
        return "a HEIC/AVIF photo"
    if data.startswith(b"BM") and data[6:10] == b"\x00\x00\x00\x00":
        return "a BMP image"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        pages = _tiff_pages(data)
        return f"a multi-page TIFF ({pages} pages)" if pages > 1 else "a TIFF image"
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            return what
    return None


def _tiff_pages(data: bytes) -> int:
    """Page count from the TIFF directory chain (no pixels decoded); 1 if unreadable."""
    try:
        with Image.open(io.BytesIO(data), formats=["TIFF"]) as image:
            return int(getattr(image, "n_frames", 1))
    except Exception:  # a malformed TIFF is refused either way; only the wording is at stake
        return 1


def _text_kind(head: bytes) -> str | None:
    """Name text content (HTML, SVG, XML, plain text) from its first few KB."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            text = head[len(bom) :].decode(encoding, errors="replace")
            break
    else:
        if b"\x00" in head:
            return None
        text = head.decode("utf-8", errors="replace")
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f"))
    if odd > max(2, len(text) // 100):
        return None
    lowered = text.lstrip().lower()
    if lowered.startswith("<"):
        if "<svg" in lowered:
            return "an SVG drawing"
        if "<html" in lowered or lowered.startswith("<!doctype html"):
            return "an HTML page"
        if lowered.startswith("<?xml"):
            return "an XML document"
    return "a text file"


# One decoder for each entry of `pneumoscan.formats.FORMATS`, by name.
DECODERS: dict[str, Callable[[bytes], DecodedImage]] = {
    "dicom": _decode_dicom,
    "jpeg": partial(_decode_raster, fmt="JPEG"),
    "png": partial(_decode_raster, fmt="PNG"),
}
