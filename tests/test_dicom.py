"""DICOM uploads: the display pipeline reproduces the X-ray, bad files are refused, no PHI leaks."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    JPEGLosslessSV1,
    JPEGLSLossless,
)

from pneumoscan import dicom
from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from tests.dicom_files import MARKER, PHI, make_dicom, secondary_capture, stored_values


def rejected(data: bytes) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        decode_image(data)
    return caught.value


@pytest.fixture(scope="module")
def xray_gray(xray_paths: list[Path]) -> np.ndarray:
    return np.asarray(Image.open(xray_paths[1]).convert("L"))


@pytest.fixture
def small_gray() -> np.ndarray:
    yy, xx = np.mgrid[0:96, 0:80]
    return ((xx * 3 + yy * 2) % 256).astype(np.uint8)


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_windowed_dicom_shows_the_same_picture_as_the_jpeg(
    xray_gray: np.ndarray, bits: int, photometric: str
) -> None:
    top = 2**bits - 1
    data = make_dicom(
        stored_values(xray_gray, bits, photometric), bits, photometric, window=((top + 1) / 2, top + 1)
    )
    decoded = decode_image(data)
    assert decoded.source_format == "dicom"
    assert decoded.gray.shape == xray_gray.shape and decoded.gray.dtype == np.uint8
    assert np.abs(decoded.gray.astype(int) - xray_gray.astype(int)).max() <= 1
    assert decoded.colourfulness == 0.0


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_unwindowed_dicom_is_stretched_over_its_own_range(
    xray_gray: np.ndarray, bits: int, photometric: str
) -> None:
    decoded = decode_image(make_dicom(stored_values(xray_gray, bits, photometric), bits, photometric))
    low, high = float(xray_gray.min()), float(xray_gray.max())
    expected = (xray_gray - low) * 255.0 / (high - low)
    assert np.abs(decoded.gray - expected).max() <= 1.01


def test_rescale_slope_and_intercept_are_applied_before_the_window(xray_gray: np.ndarray) -> None:
    stored = xray_gray.astype(np.uint16) * 16  # 12-bit detector values
    slope, intercept = 0.5, -1024.0
    display_low, display_high = intercept, 4095 * slope + intercept  # window over the modality range
    window = ((display_low + display_high) / 2 + 0.5, display_high - display_low + 1)
    data = make_dicom(stored, 12, window=window, rescale=(slope, intercept))
    decoded = decode_image(data)
    expected = stored * 255.0 / 4095
    assert np.abs(decoded.gray - expected).max() <= 1.01


def test_narrow_window_clips_to_black_and_white(small_gray: np.ndarray) -> None:
    decoded = decode_image(make_dicom(small_gray, 8, window=(128, 64)))
    assert np.all(decoded.gray[small_gray < 96] == 0)
    assert np.all(decoded.gray[small_gray >= 160] == 255)
    middle = (small_gray > 100) & (small_gray < 156)
    assert np.all((decoded.gray[middle] > 0) & (decoded.gray[middle] < 255))


def test_voi_lut_sequence_is_applied(small_gray: np.ndarray) -> None:
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = [255 - value for value in range(256)]
    item["LUTData"].VR = "US"
    decoded = decode_image(make_dicom(small_gray, 8, extra={"VOILUTSequence": Sequence([item])}))
    low, high = 255 - float(small_gray.max()), 255 - float(small_gray.min())
    expected = ((255.0 - small_gray) - low) * 255.0 / (high - low)
    assert np.abs(decoded.gray - expected).max() <= 1.01


def test_dicom_without_preamble_is_read_by_content(small_gray: np.ndarray) -> None:
    data = make_dicom(small_gray, 8, preamble=False)
    assert data[128:132] != b"DICM"
    decoded = decode_image(data)
    assert decoded.source_format == "dicom"
    assert np.array_equal(
        decoded.gray, ((small_gray - small_gray.min()) * 255.0 / np.ptp(small_gray)).round()
    )


def test_dicom_without_pixel_data_is_refused(small_gray: np.ndarray) -> None:
    ds = Dataset()
    ds.PatientName = MARKER
    ds.Modality = "SR"
    error = rejected(secondary_capture(ds))
    assert error.status == 422
    assert "no pixel data" in error.message


def test_preamble_less_data_set_without_pixels_is_not_taken_for_dicom() -> None:
    ds = Dataset()
    ds.Modality = "SR"
    ds.PatientName = MARKER
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True)
    assert rejected(buffer.getvalue()).status == 415


def _undecodable_syntaxes() -> list[UID]:
    return [syntax for syntax in (JPEGLosslessSV1, JPEGLSLossless) if not get_decoder(syntax).is_available]


@pytest.mark.parametrize(
    "syntax", [UID("1.2.826.0.1.3680043.2.1143.999.1"), *_undecodable_syntaxes()], ids=str
)
def test_transfer_syntax_that_cannot_be_decoded_is_named(small_gray: np.ndarray, syntax: UID) -> None:
    fragment = b"\xff\xd8\xff\xc3" + bytes(64)
    encapsulated = (
        b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
        + b"\xfe\xff\x00\xe0"
        + len(fragment).to_bytes(4, "little")
        + fragment
        + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    )
    data = make_dicom(small_gray, 8, syntax=syntax, pixel_data=encapsulated)
    error = rejected(data)
    assert error.status == 415
    assert str(syntax) in error.message
    if syntax.name != str(syntax):
        assert syntax.name in error.message


def test_multi_frame_dicom_is_refused(small_gray: np.ndarray) -> None:
    stack = np.stack([small_gray, small_gray, 255 - small_gray])
    error = rejected(make_dicom(stack, 8, frames=3))
    assert error.status == 415
    assert "3 frames" in error.message


def test_truncated_pixel_data_is_damaged(small_gray: np.ndarray) -> None:
    data = make_dicom(small_gray, 16, pixel_data=small_gray.astype(np.uint16).tobytes()[:2000])
    error = rejected(data)
    assert error.status == 422
    assert "damaged" in error.message


def test_file_with_dicom_marker_but_garbage_is_damaged() -> None:
    error = rejected(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + bytes(range(200)))
    assert error.status == 422


def test_dicom_under_the_minimum_side_is_refused(small_gray: np.ndarray) -> None:
    error = rejected(make_dicom(small_gray[:32, :40], 8))
    assert error.status == 422
    assert "too small" in error.message and "40x32" in error.message


def test_dicom_claiming_too_many_pixels_is_refused_before_decoding(small_gray: np.ndarray) -> None:
    error = rejected(_claiming_size(small_gray, 20_000, 20_000))
    assert error.status == 422
    assert "too large" in error.message and "20000x20000" in error.message


def _claiming_size(gray: np.ndarray, rows: int, columns: int) -> bytes:
    """A DICOM whose header claims rows x columns but carries only a little pixel data."""
    data = bytearray(make_dicom(gray, 16))
    for keyword_tag, value in ((b"\x28\x00\x10\x00", rows), (b"\x28\x00\x11\x00", columns)):
        at = data.index(keyword_tag + b"US\x02\x00") + 8
        data[at : at + 2] = value.to_bytes(2, "little")
    return bytes(data)


def test_rgb_secondary_capture_is_converted_to_gray(small_gray: np.ndarray) -> None:
    ds = Dataset()
    ds.PatientName = MARKER
    ds.Rows, ds.Columns = small_gray.shape
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.repeat(small_gray[:, :, None], 3, axis=2).tobytes()
    decoded = decode_image(secondary_capture(ds))
    assert np.array_equal(decoded.gray, small_gray)
    assert decoded.colourfulness == 0.0


def _phi_strings() -> list[str]:
    return [MARKER, "Secretpatient", "Zyxwvut", *list(PHI.values())[1:], "Phimarker"]


def _all_text_of(error: BaseException) -> str:
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), *[str(arg) for arg in seen.args]]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def test_no_phi_is_parsed_returned_logged_or_put_in_errors(
    xray_gray: np.ndarray, small_gray: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    good = make_dicom(stored_values(xray_gray, 12, "MONOCHROME1"), 12, "MONOCHROME1")
    bad = [
        make_dicom(np.stack([small_gray, small_gray]), 8, frames=2),
        make_dicom(small_gray, 16, pixel_data=b"\x01" * 300),
        make_dicom(small_gray, 8, syntax=JPEGLSLossless, pixel_data=b"\xfe\xff\x00\xe0" + bytes(4)),
        make_dicom(small_gray[:30, :30], 8),
        make_dicom(small_gray, 8, extra={"PhotometricInterpretation": "PALETTE COLOR"}),
        make_dicom(small_gray, 8, extra={"PhotometricInterpretation": "ZYXWVUT"}),
        make_dicom(small_gray, 8, syntax="ZYXWVUT^SECRETPATIENT", pixel_data=b"\xfe\xff\x00\xe0" + bytes(4)),
    ]
    assert MARKER.encode() in good
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = dicom.parse(good)
        decoded = decode_image(good)
        errors = []
        for data in bad:
            with pytest.raises(ImageRejected) as refused:
                decode_image(data)
            errors.append(refused.value)
    assert dataset is not None and "PatientName" not in dataset and "PatientID" not in dataset
    assert set(vars(decoded)) == {"gray", "source_format", "colourfulness", "full_size", "orientation"}
    text = "\n".join(
        [repr(decoded), str(decoded.__dict__), caplog.text, *(str(w.message) for w in caught)]
        + [_all_text_of(error) for error in errors]
    )
    for secret in _phi_strings():
        assert secret.lower() not in text.lower()
    assert {error.status for error in errors} == {415, 422}


PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom remarks on its deliberately odd files
def test_every_real_dicom_shipped_with_pydicom_decodes_or_gets_a_clear_4xx() -> None:
    paths = sorted(PYDICOM_FILES.glob("*.dcm"))
    if not paths:
        pytest.skip(f"pydicom's test files are not installed at {PYDICOM_FILES}")
    outcomes = {}
    for path in paths:
        try:
            decoded = decode_image(path.read_bytes())
        except ImageRejected as error:
            assert error.status in (415, 422) and error.message, path.name  # noqa: PT017 (one outcome per file)
            outcomes[path.name] = error.status
        else:
            assert decoded.gray.dtype == np.uint8 and decoded.gray.ndim == 2, path.name
            assert decoded.source_format == "dicom"
            outcomes[path.name] = 200
    expected = {
        "CT_small.dcm": 200,  # signed 16-bit with rescale slope/intercept
        "MR_small_RLE.dcm": 200,
        "MR_small_bigendian.dcm": 200,
        "SC_rgb_jpeg_dcmtk.dcm": 200,  # JPEG Baseline in DICOM, colour
        "JPEG-lossy.dcm": 422,  # 12-bit JPEG with a misplaced marker that libjpeg refuses
        "MR_truncated.dcm": 422,
        "examples_palette.dcm": 415,
        "rtdose.dcm": 415,  # 15 frames
    }
    assert {name: outcomes.get(name) for name in expected} == expected


def test_12_bit_jpeg_dicom_failure_names_its_transfer_syntax() -> None:
    path = PYDICOM_FILES / "JPEG-lossy.dcm"
    if not path.exists():
        pytest.skip(f"pydicom's test file {path} is not installed")
    error = rejected(path.read_bytes())
    assert "JPEG Extended" in error.message and "1.2.840.10008.1.2.4.51" in error.message
