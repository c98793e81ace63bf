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
- Images over DECODE_MAX_PIXELS are reduced while they are decoded (JPEG in the DCT domain,
  PNG in strips of rows, DICOM before its LUTs), so a 49-megapixel upload never exists in
  memory at full size: the model sees 224x224 and the overlay at most 1024 pixels a side.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np
from PIL import ExifTags, Image

from pneumoscan import dicom
from pneumoscan.errors import ImageRejected
from pneumoscan.formats import describe_unsupported, detect
from pneumoscan.limits import DECODE_MAX_PIXELS, MAX_PIXELS
from pneumoscan.png import png_chunk, png_chunks

MIN_SIDE = 64
STRIP_BYTES = 4 * 1024 * 1024
PROGRESSIVE_JPEG_MAX_BYTES = 64 * 1024 * 1024

_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# PNG layouts decoded in strips: (bit depth, colour type) -> Pillow raw mode of one row.
_STRIP_RAWMODES = {(8, 0): "L", (16, 0): "I;16B", (8, 2): "RGB", (8, 3): "P", (8, 4): "LA", (8, 6): "RGBA"}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@dataclass(frozen=True)
class DecodedImage:
    """Grayscale pixels plus what the app records and the non-X-ray gate needs."""

    gray: np.ndarray
    source_format: str
    colourfulness: float
    full_size: tuple[int, int] | None = None
    orientation: int = 1

    @property
    def width(self) -> int:
        """Width of the upload as shown, also when it was decoded reduced."""
        return self.full_size[0] if self.full_size else int(self.gray.shape[1])

    @property
    def height(self) -> int:
        return self.full_size[1] if self.full_size else int(self.gray.shape[0])


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
        raise ImageRejected(describe_unsupported(data), 415)
    return DECODERS[fmt.name](data)


def _decode_dicom(data: bytes) -> DecodedImage:
    dataset = dicom.parse(data)
    if dataset is None:
        raise ImageRejected(describe_unsupported(data), 415)
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
        if fmt == "JPEG":
            _check_progressive_jpeg(image)
        full_size = image.size
        if full_size[0] * full_size[1] <= DECODE_MAX_PIXELS:
            image.load()
            orientation = _orientation(image.getexif)
        elif fmt == "JPEG":
            image.draft(image.mode, _reduced_size(*full_size))
            image.load()
            orientation = _orientation(image.getexif)
        else:
            image, orientation = _png_in_strips(data, *full_size)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"the image is too large: it claims more than the limit of {MAX_PIXELS // 1_000_000} megapixels",
            422,
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        raise ImageRejected(
            f"the {fmt} file is damaged or truncated and cannot be read; upload the complete file", 422
        ) from exc
    decoded = _from_image(image, orientation, fmt.lower())
    if image.size == full_size:
        return decoded
    shown = full_size[::-1] if orientation in (5, 6, 7, 8) else full_size
    return DecodedImage(decoded.gray, decoded.source_format, decoded.colourfulness, shown, orientation)


def _reduced_size(width: int, height: int) -> tuple[int, int]:
    """The size to ask Pillow's JPEG `draft` for: it scales by 1/2, 1/4 or 1/8, the largest
    that stays at or above the size asked, so ask for the power-of-two reduction that brings
    the image within DECODE_MAX_PIXELS."""
    scale = 2 ** math.ceil(math.log2(_reduction(width, height)))
    return max(1, width // scale), max(1, height // scale)


def _check_progressive_jpeg(image: Image.Image) -> None:
    """libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes a sample) in memory,
    at whatever size it decodes, so those are refused above PROGRESSIVE_JPEG_MAX_BYTES."""
    if not image.info.get("progressive") or not getattr(image, "layer", None):
        return
    h_max = max(h for _, h, _, _ in image.layer) or 1
    v_max = max(v for _, _, v, _ in image.layer) or 1
    needed = sum(2 * image.width * image.height * h * v / (h_max * v_max) for _, h, v, _ in image.layer)
    if needed > PROGRESSIVE_JPEG_MAX_BYTES:
        raise ImageRejected(
            f"this progressive JPEG ({image.width}x{image.height}) needs {needed / 2**20:.0f} MB to decode, "
            f"over the {PROGRESSIVE_JPEG_MAX_BYTES // 2**20} MB allowed; save it as a baseline "
            "(non-progressive) JPEG or smaller",
            422,
        )


def _reduction(width: int, height: int) -> int:
    """The smallest whole factor that brings width x height within DECODE_MAX_PIXELS."""
    return max(1, math.ceil(math.sqrt(width * height / DECODE_MAX_PIXELS)))


def _png_in_strips(data: bytes, width: int, height: int) -> tuple[Image.Image, int]:
    """A large PNG decoded a few MB of rows at a time, each strip reduced before the next is read.

    Each strip is handed to Pillow as a small PNG of its own whose first row is the previous
    strip's last row stored unfiltered, so the row filters (which refer to the row above)
    decode exactly; its data is stored uncompressed (level 0 costs a copy, level 1 is 17x
    slower). Returns the reduced image and the EXIF orientation.
    """
    chunks = list(png_chunks(data))
    header = next((bytes(payload) for kind, payload in chunks if kind == b"IHDR"), b"")
    if len(header) != 13:
        raise ImageRejected("the PNG file is damaged: it has no valid header; upload the complete file", 422)
    depth, colour, interlaced = header[8], header[9], header[12]
    rawmode = _STRIP_RAWMODES.get((depth, colour))
    if rawmode is None or interlaced:
        layout = "interlaced" if interlaced else f"stored at {depth} bits a sample"
        raise ImageRejected(
            f"this {width}x{height} PNG is {layout}, "
            f"which is decoded in one piece only up to {DECODE_MAX_PIXELS // 1_000_000} megapixels; save it "
            "as a non-interlaced 8-bit (or 16-bit gray) PNG, as a JPEG or smaller",
            422,
        )
    factor = _reduction(width, height)
    row_bytes = 1 + math.ceil(width * _PNG_CHANNELS[colour] * depth / 8)
    rows = factor * max(1, STRIP_BYTES // row_bytes // factor)
    extras = b"".join(png_chunk(kind, bytes(body)) for kind, body in chunks if kind in (b"PLTE", b"tRNS"))
    exif = next((payload for kind, payload in chunks if kind == b"eXIf"), None)
    idat = (payload for kind, payload in chunks if kind == b"IDAT")
    inflater = zlib.decompressobj()
    above = b""
    pieces = []
    for top in range(0, height, rows):
        count = min(rows, height - top)
        filtered = _inflate_exactly(inflater, idat, count * row_bytes)
        strip_header = header[:4] + struct.pack(">I", count + bool(above)) + header[8:12] + b"\x00"
        strip_png = (
            data[:8]
            + png_chunk(b"IHDR", strip_header)
            + extras
            + png_chunk(b"IDAT", zlib.compress((b"\x00" + above if above else b"") + filtered, 0))
            + png_chunk(b"IEND", b"")
        )
        strip = Image.open(io.BytesIO(strip_png), formats=["PNG"])
        strip.load()
        if above:
            strip = strip.crop((0, 1, width, count + 1))
        above = strip.crop((0, count - 1, width, count)).tobytes("raw", rawmode)
        pieces.append(_reduce(strip, factor))
    image = Image.new(pieces[0].mode, (pieces[0].width, sum(piece.height for piece in pieces)))
    y = 0
    for piece in pieces:
        image.paste(piece, (0, y))
        y += piece.height
    orientation = _orientation(lambda: _exif_from(exif)) if exif is not None else 1
    return image, orientation


def _inflate_exactly(inflater, source: Iterator[memoryview], size: int) -> bytes:
    """Exactly `size` bytes of the zlib stream spread over `source`; the file is short otherwise."""
    out = bytearray()
    while len(out) < size:
        feed = inflater.unconsumed_tail or next(source, None)
        if feed is None:
            raise ImageRejected(
                "the PNG file is truncated: its pixel data ends early; upload the complete file", 422
            )
        out += inflater.decompress(feed, size - len(out))
    return bytes(out)


def _reduce(strip: Image.Image, factor: int) -> Image.Image:
    """Box-average `factor` x `factor` blocks, after compositing transparency on black (which
    makes the pieces, and the image assembled from them, RGB: a quarter smaller than RGBA)."""
    strip = _on_black(strip)
    if strip.mode == "P":
        strip = strip.convert("RGB")
    if strip.mode == "I;16":
        wide = np.asarray(strip)
        size = (max(1, strip.width // factor), max(1, strip.height // factor))
        return Image.fromarray(cv2.resize(wide, size, interpolation=cv2.INTER_AREA))
    return strip.reduce(factor)


def _exif_from(payload: memoryview) -> Image.Exif:
    exif = Image.Exif()
    exif.load(bytes(payload))
    return exif


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


def _orientation(read_exif) -> int:
    """The EXIF orientation (1 to 8, 1 when absent or unreadable) from `read_exif()`."""
    try:
        value = read_exif().get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION else 1


def _from_image(image: Image.Image, orientation: int, source_format: str) -> DecodedImage:
    if image.mode.startswith("I"):
        pixels = _stretch_to_uint8(np.asarray(image))
        gray = Image.fromarray(pixels)
        colour = 0.0
    else:
        image = _on_black(image)
        gray = image.convert("L")
        if image.mode in ("1", "L"):
            colour = 0.0
        else:
            colour = colourfulness(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
    if orientation in _ORIENTATION:
        gray = gray.transpose(_ORIENTATION[orientation])
    return DecodedImage(
        gray=np.asarray(gray), source_format=source_format, colourfulness=colour, orientation=orientation
    )


def _on_black(image: Image.Image) -> Image.Image:
    """Transparent areas composited on black (RGB out); images without transparency unchanged."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image


def _from_pixels(pixels: np.ndarray, source_format: str) -> DecodedImage:
    """A decoder's uint8 array (2-D gray or H x W x 3 RGB) -> DecodedImage."""
    if pixels.ndim == 2:
        return DecodedImage(gray=np.ascontiguousarray(pixels), source_format=source_format, colourfulness=0.0)
    gray = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))
    return DecodedImage(gray=gray, source_format=source_format, colourfulness=colourfulness(pixels))


def _stretch_to_uint8(wide: np.ndarray) -> np.ndarray:
    """Linearly map the image's own minimum..maximum to 0..255 (uniform images -> 0).

    In place in one float32 copy: float64 and temporaries cost 25 bytes a pixel.
    """
    low, high = int(wide.min()), int(wide.max())
    if high <= low:
        return np.zeros(wide.shape, dtype=np.uint8)
    scaled = wide.astype(np.float32)
    scaled -= low
    scaled *= 255.0 / (high - low)
    return np.rint(scaled, out=scaled).astype(np.uint8)


# One decoder for each entry of `pneumoscan.formats.FORMATS`, by name.
DECODERS: dict[str, Callable[[bytes], DecodedImage]] = {
    "dicom": _decode_dicom,
    "jpeg": partial(_decode_raster, fmt="JPEG"),
    "png": partial(_decode_raster, fmt="PNG"),
}
