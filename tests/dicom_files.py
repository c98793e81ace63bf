"""DICOM files built in memory for the tests: real pixels, planted patient data (to check that
none leaks), any bit depth, photometric interpretation and transfer syntax."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

MARKER = "Zyxwvut^Secretpatient"
PHI = {
    "PatientName": MARKER,
    "PatientID": "PHI-ID-7741",
    "PatientBirthDate": "19010203",
    "InstitutionName": "PHI Marker Hospital",
    "ReferringPhysicianName": "Phimarker^Doctor",
}


def stored_values(gray: np.ndarray, bits: int, photometric: str) -> np.ndarray:
    """8-bit display values -> stored values at `bits`, inverted for MONOCHROME1."""
    top = 2**bits - 1
    values = np.round(gray.astype(np.float64) * top / 255.0).astype(np.uint16)
    return top - values if photometric == "MONOCHROME1" else values


def make_dicom(
    stored: np.ndarray,
    bits: int = 8,
    photometric: str = "MONOCHROME2",
    *,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    frames: int = 1,
    preamble: bool = True,
    syntax: str = ExplicitVRLittleEndian,
    pixel_data: bytes | None = None,
    extra: dict | None = None,
) -> bytes:
    """A DX-like DICOM file with patient data set to marker strings."""
    ds = Dataset()
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.Rows, ds.Columns = stored.shape[-2], stored.shape[-1]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    dtype = np.uint8 if bits == 8 else np.uint16
    ds.PixelData = (
        pixel_data if pixel_data is not None else np.ascontiguousarray(stored, dtype=dtype).tobytes()
    )
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = syntax
        encoding = {} if UID(syntax).is_transfer_syntax else {"implicit_vr": False, "little_endian": True}
        ds.save_as(buffer, enforce_file_format=True, **encoding)
    else:
        ds.save_as(buffer, implicit_vr=True, little_endian=True)
    return buffer.getvalue()


def secondary_capture(ds: Dataset) -> bytes:
    """`ds` saved as an explicit-VR little-endian secondary-capture DICOM file."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
