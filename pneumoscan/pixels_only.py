"""A JPEG or PNG reduced to what draws its pixels, so a stored original keeps no patient text.

Uploads are kept as sent (no re-encoding: a JPEG stays byte-exact in its scans and costs no
time), minus every segment or chunk that can carry text: EXIF, XMP, ICC profiles (which have
free-text descriptions), JPEG comments and APPn segments, PNG text and time chunks, anything
unknown, and bytes after the end of the image. What the picture needs stays: quantisation and
Huffman tables, frame and scan headers with their entropy-coded data, the Adobe colour
transform flag, PNG palette, transparency, gamma and colour-space chunks. The EXIF orientation
the decoder applied is written back as a one-entry EXIF block, so the stored image shows as
the one that was scored.
"""

from __future__ import annotations

import struct

from PIL import ExifTags, Image

from pneumoscan.png import png_chunk

_PNG_KEEP = {b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"IDAT", b"IEND"}
_APP0, _APP15, _APP14, _COM, _SOS, _EOI = 0xE0, 0xEF, 0xEE, 0xFE, 0xDA, 0xD9
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def pixels_only(data: bytes, source_format: str, orientation: int = 1) -> bytes | None:
    """`data` without metadata, or None when its structure is not the plain one walked here
    (the caller then stores a lossless re-encoding of the decoded pixels instead)."""
    try:
        if source_format == "jpeg":
            return _jpeg(data, orientation)
        if source_format == "png":
            return _png(data, orientation)
    except (IndexError, ValueError, struct.error):
        return None
    return None


def _orientation_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def _jpeg(data: bytes, orientation: int) -> bytes | None:
    out = bytearray(data[:2])
    if orientation != 1:
        payload = _orientation_exif(orientation)
        out += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            return None
        while data[pos + 1] == 0xFF:
            pos += 1
        marker = data[pos + 1]
        if marker == _EOI:
            return bytes(out + b"\xff\xd9")
        if marker in _STANDALONE:
            out += data[pos : pos + 2]
            pos += 2
            continue
        end = pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if end > len(data):
            return None
        if marker == _SOS:
            end = _scan_end(data, end)
            out += data[pos:end]
        elif not (_APP0 <= marker <= _APP15 or marker == _COM) or (
            marker == _APP14 and data[pos + 4 : pos + 9] == b"Adobe" and end - pos == 16
        ):
            out += data[pos:end]
        pos = end
    return None


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at `pos` ends: the first marker that is neither a
    stuffed zero nor a restart marker."""
    while True:
        pos = data.index(b"\xff", pos)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def _png(data: bytes, orientation: int) -> bytes | None:
    out = bytearray(data[:8])
    pos = 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if kind == b"IDAT" and orientation != 1:
            out += png_chunk(b"eXIf", _orientation_exif(orientation).removeprefix(b"Exif\x00\x00"))
            orientation = 1
        if kind in _PNG_KEEP:
            out += data[pos:end]
        if kind == b"IEND":
            return bytes(out)
        pos = end
    return None
