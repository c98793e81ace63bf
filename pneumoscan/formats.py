"""The upload formats PneumoScan reads, listed once.

Each entry says how the format is recognised (by content, never by file name), what a person
calls it, the file name suffixes and MIME type a file picker offers, and whether the upload is
kept as sent or only as a PNG of its pixels. `pneumoscan.decode.DECODERS` holds one decoder
per entry. The upload form and its help text, the upload store, the data-set listing and the
refusal messages all read this list, so a new format is one entry here plus its decoder.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from pneumoscan import dicom


@dataclass(frozen=True)
class InputFormat:
    name: str
    label: str
    suffixes: tuple[str, ...]
    mime_type: str
    kept_as_uploaded: bool
    matches: Callable[[bytes], bool]

    @property
    def stored_suffix(self) -> str:
        """The suffix of a kept upload (the first of `suffixes`)."""
        return self.suffixes[0]


def _is_dicom(data: bytes) -> bool:
    """The 'DICM' marker after the 128-byte preamble, or a preamble-less data set's first tag;
    `pneumoscan.dicom.parse` decides the second case."""
    return data[128:132] == dicom.MAGIC or data[:2] in dicom.RAW_STARTS


# Checked in this order. DICOM comes first: its free-form preamble may itself start like a JPEG.
FORMATS = (
    InputFormat("dicom", "DICOM", (".dcm",), "application/dicom", kept_as_uploaded=False, matches=_is_dicom),
    InputFormat(
        "jpeg",
        "JPEG",
        (".jpg", ".jpeg"),
        "image/jpeg",
        kept_as_uploaded=True,
        matches=lambda data: data.startswith(b"\xff\xd8\xff"),
    ),
    InputFormat(
        "png",
        "PNG",
        (".png",),
        "image/png",
        kept_as_uploaded=True,
        matches=lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
    ),
)
BY_NAME = {fmt.name: fmt for fmt in FORMATS}
PNG = BY_NAME["png"]
IMAGE_SUFFIXES = frozenset(suffix for fmt in FORMATS for suffix in fmt.suffixes)


def _in_words(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


ACCEPTED_LABELS = _in_words([fmt.label for fmt in FORMATS])
ACCEPTED = f"PneumoScan reads chest X-rays as {ACCEPTED_LABELS}"
FILE_PICKER_ACCEPT = ",".join(
    [suffix for fmt in FORMATS for suffix in fmt.suffixes] + [fmt.mime_type for fmt in FORMATS]
)
NOT_KEPT_LABELS = _in_words([fmt.label for fmt in FORMATS if not fmt.kept_as_uploaded])


def detect(data: bytes) -> InputFormat | None:
    """The first format whose signature the bytes carry, or None."""
    return next((fmt for fmt in FORMATS if fmt.matches(data)), None)


# What a file we do not read appears to be, for the refusal message.
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


def describe_unsupported(data: bytes) -> str:
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
