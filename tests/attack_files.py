"""Hostile uploads rebuilt from the adversarial review, for the benchmark and the tests.

Each is small on the wire and large or odd once decoded: a 49-megapixel 16-bit PNG, RGBA PNG
and RLE DICOM, a DICOM whose Deflated data set inflates to about 1 GB, a DICOM with two
frames of pixel data but no NumberOfFrames, and JPEG/PNG files carrying patient text.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

PATIENT_TEXT = "PATIENT: DOE^JOHN MRN 99887766"
SIDE = 7000


def chest_like(side: int, top: int) -> np.ndarray:
    """A smooth bright-centred picture, so the big files compress to a few hundred KB."""
    ramp = np.abs(np.linspace(-1.0, 1.0, side, dtype=np.float32))
    profile = (1.0 - ramp) * top
    return np.minimum.outer(profile, profile).astype(np.uint16 if top > 255 else np.uint8)


def png_16_bit(side: int = SIDE) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(chest_like(side, 4095)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def png_rgba(side: int = SIDE) -> bytes:
    gray = chest_like(side, 255)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def _meta(syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    return meta


def _monochrome(rows: int, columns: int, bits: int) -> Dataset:
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    return ds


def _saved(ds: Dataset, syntax: str) -> bytes:
    ds.file_meta = _meta(syntax)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _packbits(row: np.ndarray) -> bytes:
    """One row as PackBits replicate runs of at most 128 bytes (literal runs of one byte)."""
    out = bytearray()
    starts = np.concatenate(([0], np.flatnonzero(np.diff(row)) + 1, [len(row)]))
    for start, end in zip(starts[:-1], starts[1:], strict=True):
        value = int(row[start])
        for length in [128] * ((end - start) // 128) + [(end - start) % 128]:
            if length:
                out += bytes((257 - length, value)) if length > 1 else bytes((0, value))
    return bytes(out)


def _rle_segment(plane: np.ndarray) -> bytes:
    """PackBits of each row of one byte plane (the smooth test picture has few distinct rows)."""
    encoded: dict[bytes, bytes] = {}
    for row in plane:
        if row.tobytes() not in encoded:
            encoded[row.tobytes()] = _packbits(row)
    out = b"".join(encoded[row.tobytes()] for row in plane)
    return out + (b"\x00" if len(out) % 2 else b"")


def rle_dicom(side: int = SIDE) -> bytes:
    """16-bit RLE Lossless DICOM: two byte planes, each row run-length coded."""
    pixels = (chest_like(side, 4095) // 64 * 64).astype(">u2")
    planes = pixels.view(np.uint8).reshape(side, side, 2)
    segments = [_rle_segment(planes[:, :, index]) for index in (0, 1)]
    header = struct.pack("<16I", 2, 64, 64 + len(segments[0]), *([0] * 13))
    frame = header + segments[0] + segments[1]
    item = struct.pack("<HHI", 0xFFFE, 0xE000, len(frame)) + frame
    offsets = struct.pack("<HHI", 0xFFFE, 0xE000, 0)
    end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    ds = _monochrome(side, side, 12)
    ds.PixelData = offsets + item + end
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return _saved(ds, RLELossless)


def deflated_dicom_bomb(inflated: int = 1 << 30) -> bytes:
    """Deflated Explicit VR Little Endian whose data set inflates to about `inflated` bytes."""
    ds = _monochrome(32768, inflated // 32768, 8)
    head = io.BytesIO()
    ds.save_as(head, implicit_vr=False, little_endian=True)
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, inflated)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = [packer.compress(head.getvalue() + pixel_header)]
    zeros = bytes(1 << 24)
    for _ in range(inflated >> 24):
        body.append(packer.compress(zeros))
    body.append(packer.flush())
    meta = DicomBytesIO()
    write_file_meta_info(meta, _meta(DeflatedExplicitVRLittleEndian), enforce_standard=True)
    return bytes(128) + b"DICM" + meta.getvalue() + b"".join(body)


def two_frames_without_count(side: int = 256) -> bytes:
    """Pixel data for two frames, but no NumberOfFrames element."""
    ds = _monochrome(side, side, 8)
    ds.PixelData = chest_like(side, 255).tobytes() * 2
    ds["PixelData"].VR = "OB"
    return _saved(ds, ExplicitVRLittleEndian)


def jpeg_with_patient_text(gray: np.ndarray) -> bytes:
    """A JPEG with the marker in a COM segment, in EXIF and in an XMP packet."""
    exif = Image.Exif()
    exif[0x010E] = PATIENT_TEXT
    exif[0x013B] = PATIENT_TEXT
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>{PATIENT_TEXT}</rdf:Description></x:xmpmeta>'
    buffer = io.BytesIO()
    Image.fromarray(gray).save(
        buffer, "JPEG", quality=90, comment=PATIENT_TEXT, exif=exif.tobytes(), xmp=xmp.encode()
    )
    return buffer.getvalue()


def png_with_patient_text(gray: np.ndarray) -> bytes:
    """A PNG with the marker in tEXt, zTXt and iTXt chunks and in EXIF."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", PATIENT_TEXT)
    info.add_text("Patient", PATIENT_TEXT, zip=True)
    info.add_itxt("Description", PATIENT_TEXT, lang="en", tkey="Description")
    exif = Image.Exif()
    exif[0x010E] = PATIENT_TEXT
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "PNG", pnginfo=info, exif=exif.tobytes())
    return buffer.getvalue()


def big_files() -> dict[str, bytes]:
    """The three 49-megapixel files whose decoding once took a worker past 1 GB, and the largest
    of each kind that is still decoded in one piece (just under DECODE_MAX_PIXELS, and an RLE
    DICOM just under the compressed-size cap)."""
    return {
        "16-bit PNG 7000x7000": png_16_bit(),
        "RGBA PNG 7000x7000": png_rgba(),
        "RLE DICOM 7000x7000": rle_dicom(),
        "16-bit PNG 2820x2820": png_16_bit(2820),
        "RGBA PNG 2820x2820": png_rgba(2820),
        "RLE DICOM 3500x3500": rle_dicom(3500),
    }
