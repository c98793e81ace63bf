"""The upload formats PneumoScan reads, listed once.

Each entry says how the format is recognised (by content, never by file name), what a person
calls it, the file name suffixes and MIME type a file picker offers, and whether the upload is
kept as sent or only as a PNG of its pixels. `pneumoscan.decode.DECODERS` holds one decoder
per entry. The upload form and its help text, the upload store, the data-set listing and the
refusal messages all read this list, so a new format is one entry here plus its decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
