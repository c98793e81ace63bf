"""No patient text is kept: stored and served originals carry pixels only."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumoscan.decode import decode_image
from pneumoscan.pixels_only import pixels_only
from tests.attack_files import PATIENT_TEXT, jpeg_with_patient_text, png_with_patient_text

MARKERS = [PATIENT_TEXT.encode(), b"DOE^JOHN", b"99887766"]


def leaked(data: bytes) -> list[bytes]:
    """Markers found in `data` as bytes or UTF-16 (compressed PNG text is checked through Pillow)."""
    return [marker for marker in MARKERS if marker in data or marker.decode().encode("utf-16-le") in data]


@pytest.fixture(scope="module")
def gray(xray_paths: list[Path]) -> np.ndarray:
    return np.asarray(Image.open(xray_paths[0]).convert("L"))


@pytest.mark.parametrize("build", [jpeg_with_patient_text, png_with_patient_text], ids=["jpeg", "png"])
def test_uploads_with_planted_text_are_stored_and_served_without_it(app, client, gray, build):
    data = build(gray)
    assert leaked(data), "the planted marker must be in the upload itself"
    upload = Image.open(io.BytesIO(data))
    assert "DOE^JOHN" in str(upload.info) + str(dict(upload.getexif()))

    reply = client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), "xray")})

    assert reply.status_code == 201, reply.json
    folder = Path(app.config["UPLOAD_FOLDER"])
    for path in folder.iterdir():
        assert leaked(path.read_bytes()) == [], path.name
    with client.get(reply.json["image_url"]) as response:
        served = response.data
    assert leaked(served) == []
    kept = Image.open(io.BytesIO(served))
    assert not {"comment", "xmp", "icc_profile", "exif", "Comment", "Patient", "Description"} & set(kept.info)
    assert np.array_equal(decode_image(served).gray, decode_image(data).gray)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_survives_alone(gray, fmt: str, orientation: int):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = PATIENT_TEXT
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, fmt, exif=exif.tobytes())
    data = buffer.getvalue()

    kept = pixels_only(data, fmt.lower(), decode_image(data).orientation)

    assert kept is not None and leaked(kept) == []
    assert Image.open(io.BytesIO(kept)).getexif().get(0x0112, 1) == orientation
    assert np.array_equal(decode_image(kept).gray, decode_image(data).gray)


@pytest.mark.parametrize("options", [{"progressive": True}, {"restart_marker_blocks": 4}, {}], ids=str)
@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_jpeg_scans_are_kept_byte_for_byte(gray, mode: str, options: dict):
    buffer = io.BytesIO()
    Image.fromarray(gray).convert(mode).save(buffer, "JPEG", comment=PATIENT_TEXT, **options)
    data = buffer.getvalue() + PATIENT_TEXT.encode()

    kept = pixels_only(data, "jpeg")

    assert kept is not None and leaked(kept) == []
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(kept))), np.asarray(Image.open(io.BytesIO(data))))


def test_structure_it_cannot_walk_gives_none():
    assert pixels_only(b"\xff\xd8\xff\xe0\x00", "jpeg") is None
    assert pixels_only(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "png") is None
    assert pixels_only(b"anything", "dicom") is None
