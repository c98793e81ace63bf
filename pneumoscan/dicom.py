"""DICOM bytes -> display pixels, without ever reading patient data.

Only the image-pixel, modality-LUT and VOI-LUT elements are parsed (`specific_tags`), so
patient name, id, birth date and every other identifying element never enter memory as
values, cannot reach a log, a warning or an error message, and are gone with the upload
(the DICOM file itself is never stored). Messages here name only sizes and standard
transfer syntax and photometric names, never a free-text value from the file.

Display follows the DICOM pipeline: modality LUT (rescale slope/intercept), then VOI LUT
or window, then the window's own output range (or, with no window, the image's minimum
and maximum, as viewers auto-window) mapped to 0..255, MONOCHROME1 inverted so bone is
white as in the JPEGs the model learnt from.

Pixels over DECODE_MAX_PIXELS are block-averaged right after decoding, before the LUTs (which
work in float64), and the Deflated transfer syntax is refused before it is inflated: a 1 MB
file can inflate to gigabytes.

Compressed frames are decoded by pydicom's pixel-data plugins: pylibjpeg-libjpeg (JPEG
baseline, extended 12-bit, lossless with any predictor, JPEG-LS), pylibjpeg-openjpeg or Pillow
(JPEG 2000) and pylibjpeg-rle (RLE). Those decoders size their output from the compressed
frame's own header, not from the data set's, so that header is read first and a frame declaring
another size than Rows x Columns is refused before it can inflate. pydicom, and with it every
codec it finds installed, is imported at the first DICOM upload, not when a worker starts.

Multi-frame files are refused rather than cut to their first frame: a chest radiograph is
one frame, so several frames mean a series, cine loop or tomosynthesis, where the first
frame is not a chest X-ray the model can judge.
"""

from __future__ import annotations

import functools
import io
import math
import re
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from pneumoscan.errors import ImageRejected
from pneumoscan.limits import DECODE_MAX_PIXELS

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pydicom.uid import UID

MAGIC = b"DICM"
PIXEL_TAGS = [
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
]
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
_OTHER_PHOTOMETRIC = ("PALETTE COLOR", "YBR_PARTIAL_420", "YBR_PARTIAL_422", "HSV", "ARGB", "CMYK")
COMPRESSED_MAX_BYTES = 24 * 1024 * 1024
RAW_STARTS = (b"\x02\x00", b"\x08\x00")
_UID_PATTERN = re.compile(r"[0-9.]{1,64}")

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
RLE = "1.2.840.10008.1.2.5"
# JPEG baseline, extended (12-bit), lossless (any predictor), lossless SV1; JPEG-LS lossless and near-lossless
JPEG_FAMILY = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81))
# JPEG 2000 lossless and lossy, HTJ2K lossless, lossless RPCL and lossy: one SIZ header layout
J2K_FAMILY = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 201, 202, 203))
DECODING_PLUGIN = {RLE: "pylibjpeg"}
"""pydicom's own RLE decoder grows its output with the data (64 bytes for every 2 sent, so an
upload can decode to gigabytes); pylibjpeg-rle stops at the frame size the header declares."""
MAX_J2K_TILES = 4096
"""OpenJPEG sets up every tile before decoding one; an X-ray has one tile, or a few dozen."""

_BROKEN = (
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    RuntimeError,
    NotImplementedError,
    OSError,
)


@functools.cache
def _pydicom() -> ModuleType:
    """pydicom, imported at the first DICOM: importing it imports every installed codec plugin.

    Its reading validation logs offending values verbatim; nothing read from an upload may
    reach the logs, so invalid values are accepted silently (and refused later if they matter).
    """
    import pydicom
    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    return pydicom


def parse(data: bytes) -> Dataset | None:
    """The pixel-related elements of a DICOM file, or None when the bytes are not DICOM.

    A file with the 'DICM' marker that cannot be read is damaged (422). Without the
    128-byte preamble, a data set is accepted only when a forced read finds pixel data.
    """
    preamble = data[128:132] == MAGIC
    if not preamble and data[:2] not in RAW_STARTS:
        return None
    pydicom = _pydicom()
    if _declared_syntax(data) == DEFLATED:
        raise ImageRejected(
            f"this DICOM uses the transfer syntax {_describe_syntax(_uid(DEFLATED))}, "
            "which is not accepted (it can inflate to gigabytes); export it uncompressed or as JPEG Baseline",
            415,
        )
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=not preamble, specific_tags=PIXEL_TAGS)
    except Exception as exc:  # pydicom raises many exception types on malformed input
        if preamble:
            raise ImageRejected("the DICOM file is damaged and cannot be read", 422) from exc
        return None
    if not preamble:
        if "PixelData" not in dataset:
            return None
        if "TransferSyntaxUID" not in dataset.file_meta:
            dataset.file_meta.TransferSyntaxUID = _syntax_read_as(dataset)
    return dataset


def _declared_syntax(data: bytes) -> str | None:
    """The transfer syntax named in the file meta group, read without touching the data set."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    try:
        stream = io.BytesIO(data)
        read_preamble(stream, True)
        return str(_read_file_meta_info(stream).get("TransferSyntaxUID", "")).strip("\x00 ") or None
    except Exception:  # unreadable meta: the full read below decides between damaged and not DICOM
        return None


def validate(dataset: Dataset) -> tuple[int, int]:
    """Refuse, before decoding, what cannot become one grayscale picture; return (width, height)."""
    if "PixelData" not in dataset:
        if "FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset:
            raise ImageRejected("this DICOM holds floating-point pixel data, which is not supported", 415)
        raise ImageRejected("this DICOM file holds no image (it has no pixel data)", 422)
    syntax = _syntax(dataset)
    if not _can_decode(syntax):
        named = _describe_syntax(syntax)
        raise ImageRejected(
            f"this DICOM uses the transfer syntax {named}, which cannot be decoded here; "
            "export it uncompressed or as JPEG Baseline",
            415,
        )
    frames = _int(dataset, "NumberOfFrames", 1)
    if frames > 1:
        raise ImageRejected(
            f"this DICOM has {frames} frames (a series or cine loop); upload a single chest X-ray image", 415
        )
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    bits = _int(dataset, "BitsAllocated", 0)
    if photometric in _MONOCHROME:
        if bits not in (8, 16):
            raise ImageRejected(f"this DICOM stores {bits}-bit pixels; 8 to 16 bits are supported", 415)
    elif photometric in _COLOUR:
        if bits != 8:
            raise ImageRejected(
                f"this colour DICOM stores {bits}-bit samples; only 8-bit colour is supported", 415
            )
    else:
        named = photometric if photometric in _OTHER_PHOTOMETRIC else "(missing or unknown)"
        raise ImageRejected(
            f"DICOM photometric interpretation {named} is not supported; use MONOCHROME1, MONOCHROME2 or RGB",
            415,
        )
    width, height = _int(dataset, "Columns", 0), _int(dataset, "Rows", 0)
    if width <= 0 or height <= 0:
        raise ImageRejected("the DICOM file is damaged: it has no image size", 422)
    return width, height


def to_pixels(dataset: Dataset) -> np.ndarray:
    """Decode a validated data set to uint8: 2-D gray for monochrome, H x W x 3 for colour.

    Compressed pixel data is refused over COMPRESSED_MAX_BYTES decoded: pydicom's decoders
    hold about twice the decoded frame, and a 2 MB RLE file can decode to 100 MB.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    _check_compressed_size(dataset)
    _check_one_frame_of_data(dataset)
    _check_codestream(dataset)
    try:
        stored = _reduced(_checked_shape(dataset, _decoded(dataset)))
        if stored.ndim == 3:
            return np.ascontiguousarray(stored, dtype=np.uint8)
        values = apply_voi_lut(apply_modality_lut(stored, dataset), dataset)
        low, high = _display_range(dataset, values)
    except ImageRejected:
        raise
    except _BROKEN as exc:
        raise _undecodable(dataset) from exc
    except BaseException as exc:
        if not _is_codec_panic(exc):
            raise
        raise _undecodable(dataset) from exc
    scaled = np.zeros(values.shape) if high <= low else np.clip((values - low) / (high - low), 0.0, 1.0)
    if str(dataset.PhotometricInterpretation).strip().upper() == "MONOCHROME1":
        scaled = 1.0 - scaled
    return np.round(scaled * 255.0).astype(np.uint8)


def _decoded(dataset: Dataset) -> np.ndarray:
    """The stored pixels, through the plugin DECODING_PLUGIN names for the syntax, if any."""
    plugin = DECODING_PLUGIN.get(str(_syntax(dataset)), "")
    dataset.pixel_array_options(decoding_plugin=plugin, allow_excess_frames=False)
    return dataset.pixel_array


def _is_codec_panic(exc: BaseException) -> bool:
    """pylibjpeg-rle is Rust: data that overruns the declared frame stops it with a PanicException,
    which derives from BaseException, not Exception."""
    return type(exc).__name__ == "PanicException"


def _undecodable(dataset: Dataset) -> ImageRejected:
    syntax = _syntax(dataset)
    if syntax.is_compressed:
        return ImageRejected(
            f"the DICOM pixel data compressed as {_describe_syntax(syntax)} could not be decoded: it is "
            "damaged or an unsupported variant; export it uncompressed",
            422,
        )
    return ImageRejected("the DICOM pixel data is damaged or incomplete and cannot be decoded", 422)


def _check_compressed_size(dataset: Dataset) -> None:
    samples, bits = _int(dataset, "SamplesPerPixel", 1), _int(dataset, "BitsAllocated", 8)
    width, height = _int(dataset, "Columns", 0), _int(dataset, "Rows", 0)
    size = width * height * samples * max(1, bits // 8)
    if _syntax(dataset).is_compressed and size > COMPRESSED_MAX_BYTES:
        raise ImageRejected(
            f"this compressed DICOM decodes to {size // (1024 * 1024)} MB ({width}x{height} pixels at "
            f"{bits} bits), over the {COMPRESSED_MAX_BYTES // (1024 * 1024)} MB decoded here; "
            "export it smaller or uncompressed",
            422,
        )


_NOT_ONE_FRAME = ImageRejected(
    "the DICOM pixel data does not match its declared size (for example several frames without "
    "NumberOfFrames); upload a single chest X-ray image",
    422,
)


def _check_one_frame_of_data(dataset: Dataset) -> None:
    """Uncompressed pixel data long enough for a second frame is refused before decoding."""
    if _syntax(dataset).is_compressed:
        return
    frame = _int(dataset, "Rows", 0) * _int(dataset, "Columns", 0) * _int(dataset, "SamplesPerPixel", 1)
    frame *= max(1, _int(dataset, "BitsAllocated", 8) // 8)
    if len(dataset.PixelData) >= 2 * frame:
        raise _NOT_ONE_FRAME


def _check_codestream(dataset: Dataset) -> None:
    """Compressed pixel data must hold one frame; a JPEG, JPEG-LS or JPEG 2000 frame whose own
    header declares another size, sample count or a precision over 16 bits than the data set is
    refused: the decoder would allocate for what the frame declares."""
    if not _syntax(dataset).is_compressed:
        return
    frame = _only_frame(dataset)
    syntax = str(_syntax(dataset))
    if syntax not in JPEG_FAMILY and syntax not in J2K_FAMILY:
        return
    declared = _jpeg_header(frame) if syntax in JPEG_FAMILY else _j2k_header(frame)
    expected = (_int(dataset, "Rows", 0), _int(dataset, "Columns", 0), _int(dataset, "SamplesPerPixel", 1))
    if declared is None or declared[:3] != expected or not 1 <= declared[3] <= 16:
        raise ImageRejected(
            f"the compressed DICOM frame does not declare the image the header does ({expected[1]}x"
            f"{expected[0]} pixels, {expected[2]} sample(s), at most 16 bits); it is damaged or "
            "not one chest X-ray",
            422,
        )


def _only_frame(dataset: Dataset) -> bytes:
    """The one compressed frame: pydicom finds JPEG frames by their markers and would decode every
    one it finds, however many NumberOfFrames declares."""
    from pydicom.encaps import generate_frames

    try:
        frames = generate_frames(dataset.PixelData, number_of_frames=1)
        first, second = next(frames, b""), next(frames, None)
    except _BROKEN as exc:
        raise _undecodable(dataset) from exc
    if second is not None:
        raise _NOT_ONE_FRAME
    return first


def _jpeg_header(frame: bytes) -> tuple[int, int, int, int] | None:
    """(rows, columns, components, precision) from a JPEG or JPEG-LS start-of-frame segment."""
    from pydicom.pixels.utils import _get_jpg_parameters

    info = _get_jpg_parameters(frame)
    if not info:
        return None
    return info["height"], info["width"], info["components"], info["precision"]


def _j2k_header(frame: bytes) -> tuple[int, int, int, int] | None:
    """(rows, columns, components, precision) from a JPEG 2000 SIZ segment, None when unreadable
    or tiled into more than MAX_J2K_TILES tiles."""
    at = frame.find(b"\xff\x4f\xff\x51", 0, 4096)  # SOC then SIZ, which must follow it
    if at < 0 or len(frame) < at + 43:
        return None
    width, height, left, top, tile_w, tile_h, tile_left, tile_top = (
        int.from_bytes(frame[at + 8 + 4 * i : at + 12 + 4 * i], "big") for i in range(8)
    )
    components = int.from_bytes(frame[at + 40 : at + 42], "big")
    if not tile_w or not tile_h or width <= left or height <= top:
        return None
    tiles = math.ceil((width - tile_left) / tile_w) * math.ceil((height - tile_top) / tile_h)
    if tiles > MAX_J2K_TILES:
        return None
    return height - top, width - left, components, (frame[at + 42] & 0x7F) + 1


def _checked_shape(dataset: Dataset, stored: np.ndarray) -> np.ndarray:
    """One frame of Rows x Columns (x 3 for colour), or a 422: pixel data for several frames
    without NumberOfFrames decodes to a stack that is not one picture."""
    expected = (_int(dataset, "Rows", 0), _int(dataset, "Columns", 0))
    if _int(dataset, "SamplesPerPixel", 1) == 3:
        expected += (3,)
    if stored.shape != expected:
        raise _NOT_ONE_FRAME
    return stored


def _reduced(stored: np.ndarray, max_pixels: int = DECODE_MAX_PIXELS, band: int = 64) -> np.ndarray:
    """Average whole blocks so at most `max_pixels` remain, in bands of rows, in the stored dtype
    (LUTs index by stored value)."""
    factor = math.ceil(math.sqrt(stored.shape[0] * stored.shape[1] / max_pixels))
    if factor <= 1:
        return stored
    rows, columns = stored.shape[0] // factor, stored.shape[1] // factor
    out = np.empty((rows, columns, *stored.shape[2:]), dtype=stored.dtype)
    for top in range(0, rows, band):
        part = stored[top * factor : min(top + band, rows) * factor, : columns * factor].astype(np.float32)
        blocks = part.reshape(part.shape[0] // factor, factor, columns, factor, *stored.shape[2:])
        out[top : top + band] = np.rint(blocks.mean(axis=(1, 3)))
    return out


def _display_range(dataset: Dataset, values: np.ndarray) -> tuple[float, float]:
    """The window's output range when a window was applied, else the image's own range."""
    from pydicom.pixels import apply_voi_lut

    if _applies_window(dataset):
        with np.errstate(over="ignore"):
            ends = apply_voi_lut(np.array([-1e30, 1e30]), dataset)
        return float(ends.min()), float(ends.max())
    return float(values.min()), float(values.max())


def _applies_window(dataset: Dataset) -> bool:
    """Mirror apply_voi_lut's choice: a usable VOI LUT wins over Window Center/Width."""
    voi = dataset.get("VOILUTSequence")
    if voi and voi[0].get("LUTDescriptor") is not None and voi[0].get("LUTData") is not None:
        return False
    return dataset.get("WindowCenter") is not None and dataset.get("WindowWidth") is not None


def _uid(value: str) -> UID:
    from pydicom.uid import UID

    return UID(value)


def _syntax(dataset: Dataset) -> UID:
    return _uid(str(dataset.file_meta.get("TransferSyntaxUID", EXPLICIT_LITTLE)))


def _describe_syntax(syntax: UID) -> str:
    """Name and UID of a transfer syntax; text that is not a UID is never echoed."""
    if not _UID_PATTERN.fullmatch(str(syntax)):
        return "(not a valid UID)"
    return str(syntax) if syntax.name == str(syntax) else f"{syntax.name} ({syntax})"


def _can_decode(syntax: UID) -> bool:
    """Uncompressed, or a compressed family whose frame header is checked, with its plugin installed."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        return False
    if syntax.is_compressed and str(syntax) not in JPEG_FAMILY | J2K_FAMILY | {RLE}:
        return False
    plugin = DECODING_PLUGIN.get(str(syntax))
    return bool(decoder.is_available) and (plugin is None or plugin in decoder.available_plugins)


def _syntax_read_as(dataset: Dataset) -> UID:
    """A preamble-less data set has no file meta: name the encoding pydicom read it with."""
    implicit, little = dataset.original_encoding
    if not little:
        return _uid(EXPLICIT_BIG)
    return _uid(IMPLICIT_LITTLE if implicit else EXPLICIT_LITTLE)


def _int(dataset: Dataset, keyword: str, default: int) -> int:
    try:
        return int(dataset.get(keyword, default))
    except (TypeError, ValueError):
        return default
