"""Large uploads are reduced while they are decoded; DICOM that cannot be one bounded picture is
refused before it is inflated or decoded. Peak memory itself is measured by
benchmarks/bench.py, which prints it per hostile file."""

from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.limits import DECODE_MAX_PIXELS
from tests import attack_files

SIDE = 3000  # 9 megapixels: over DECODE_MAX_PIXELS, reduced by 2


def textured(side: int) -> np.ndarray:
    """Smooth picture plus noise, so the PNG encoder uses every row filter."""
    noise = np.random.default_rng(0).integers(0, 40, (side, side), dtype=np.uint8)
    return attack_files.chest_like(side, 200) + noise


def png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1, **options)
    return buffer.getvalue()


def halved(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    return textured(SIDE)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_large_png_decoded_in_strips_matches_a_full_decode_reduced(gray, mode):
    image = Image.fromarray(gray).convert(mode)
    decoded = decode_image(png(image))
    assert decoded.gray.shape == (SIDE // 2, SIDE // 2)
    assert (decoded.width, decoded.height) == (SIDE, SIDE)
    full = np.asarray(image.convert("L"), dtype=np.float32)
    error = np.abs(decoded.gray.astype(np.float32) - halved(full))
    assert error.mean() < 1.0 and error.max() <= 3 if mode != "P" else error.mean() < 3.0


def test_large_16_bit_png_is_stretched_after_reduction(gray):
    decoded = decode_image(png(Image.fromarray(gray.astype(np.uint16) * 16)))
    expected = halved(gray.astype(np.float32))
    expected = (expected - expected.min()) * 255 / np.ptp(expected)
    assert decoded.gray.shape == (SIDE // 2, SIDE // 2)
    assert np.abs(decoded.gray - expected).max() <= 1.01


def test_large_png_keeps_its_orientation(gray):
    exif = Image.Exif()
    exif[0x0112] = 6
    wide = Image.fromarray(gray[:, : SIDE - 200])
    decoded = decode_image(png(wide, exif=exif.tobytes()))
    assert decoded.orientation == 6
    assert (decoded.width, decoded.height) == (SIDE, SIDE - 200)
    assert decoded.gray.shape == (SIDE // 2 - 100, SIDE // 2)


def _interlaced(data: bytes) -> bytes:
    """The same PNG with its header's interlace flag set (Pillow does not write Adam7)."""
    header = data[12:28] + b"\x01"
    return data[:8] + data[8:12] + header + zlib.crc32(header).to_bytes(4, "big") + data[33:]


def test_large_interlaced_or_16_bit_colour_png_is_refused(gray):
    ok, colour16 = cv2.imencode(".png", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(np.uint16) * 257)
    assert ok
    interlaced = _interlaced(png(Image.fromarray(gray)))
    for data, named in ((interlaced, "interlaced"), (colour16.tobytes(), "16 bits")):
        with pytest.raises(ImageRejected) as refused:
            decode_image(data)
        assert refused.value.status == 422 and named in refused.value.message


def test_large_png_cut_short_is_damaged(gray):
    data = png(Image.fromarray(gray))
    with pytest.raises(ImageRejected) as refused:
        decode_image(data[: len(data) // 2])
    assert refused.value.status == 422


def test_large_jpeg_is_decoded_reduced(gray):
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "JPEG", quality=90)
    decoded = decode_image(buffer.getvalue())
    assert decoded.gray.size <= DECODE_MAX_PIXELS and decoded.gray.shape == (SIDE // 2, SIDE // 2)
    assert (decoded.width, decoded.height) == (SIDE, SIDE)
    assert np.abs(decoded.gray.astype(np.float32) - halved(gray.astype(np.float32))).mean() < 2.0


@pytest.mark.parametrize("build", [attack_files.png_16_bit, attack_files.png_rgba], ids=["16-bit", "RGBA"])
def test_the_49_megapixel_pngs_of_the_review_decode_reduced(build):
    decoded = decode_image(build())
    assert decoded.gray.size <= DECODE_MAX_PIXELS
    assert (decoded.width, decoded.height) == (attack_files.SIDE, attack_files.SIDE)


def test_deflated_dicom_is_refused_before_inflating():
    with pytest.raises(ImageRejected) as refused:
        decode_image(attack_files.deflated_dicom_bomb(1 << 26))
    assert refused.value.status == 415 and "Deflated" in refused.value.message


def test_large_compressed_dicom_is_refused_before_decoding():
    with pytest.raises(ImageRejected) as refused:
        decode_image(attack_files.rle_dicom())
    assert refused.value.status == 422 and "compressed" in refused.value.message


def test_compressed_dicom_over_the_decode_limit_is_reduced():
    decoded = decode_image(attack_files.rle_dicom(3000))
    assert decoded.gray.shape == (1500, 1500)
    assert decoded.gray.min() == 0 and decoded.gray.max() == 255


def test_dicom_with_two_frames_but_no_frame_count_is_422():
    with pytest.raises(ImageRejected) as refused:
        decode_image(attack_files.two_frames_without_count())
    assert refused.value.status == 422 and "declared size" in refused.value.message


def test_progressive_jpeg_is_refused_when_its_coefficients_would_not_fit():
    """libjpeg holds 2 bytes per sample of a progressive JPEG: 3400x3400 at 4:4:4 is 69 MB,
    at 4:2:0 (chroma a quarter of the samples) 35 MB."""
    picture = Image.fromarray(attack_files.chest_like(3400, 255)).convert("RGB")
    results = {}
    for subsampling in (0, 2):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", progressive=True, subsampling=subsampling, quality=70)
        try:
            results[subsampling] = decode_image(buffer.getvalue()).gray.shape
        except ImageRejected as refusal:
            results[subsampling] = (refusal.status, "progressive" in refusal.message)
    assert results == {0: (422, True), 2: (1700, 1700)}
