"""Property-based fuzzing: no input, file or query string, gets a 5xx."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pneumoscan.dataset import training_folder
from pneumoscan.decode import DecodedImage, decode_image
from pneumoscan.errors import ImageRejected
from tests.attack_files import chest_like
from tests.dicom_files import make_dicom

# Decoders remark on garbage with UserWarnings (corrupt EXIF, unknown DICOM tags); refusals are checked.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MAGICS = [
    b"",
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    bytes(128) + b"DICM",
    b"\x02\x00",
    b"\x08\x00",
    b"GIF89a",
    b"II*\x00",
    b"%PDF",
    b"<svg",
]


def outcome(data: bytes) -> DecodedImage | ImageRejected:
    """What decoding gives: pixels, or a refusal with a 4xx status. Anything else fails the test."""
    try:
        decoded = decode_image(data)
    except ImageRejected as refusal:
        refused = refusal
    else:
        assert decoded.gray.dtype == np.uint8 and decoded.gray.ndim == 2 and min(decoded.gray.shape) > 0
        return decoded
    assert 400 <= refused.status < 500 and refused.message
    return refused


def real_files(gray: np.ndarray) -> dict[str, bytes]:
    files = {}
    for fmt, options in (
        ("JPEG", {"quality": 80}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("PNG", {"interlace": True}),
    ):
        buffer = io.BytesIO()
        Image.fromarray(gray).save(buffer, fmt, **options)
        files[f"{fmt}{options}"] = buffer.getvalue()
    rgba = io.BytesIO()
    Image.fromarray(gray).convert("RGBA").save(rgba, "PNG")
    files["RGBA PNG"] = rgba.getvalue()
    files["16-bit PNG"] = _png16(gray)
    files["DICOM"] = make_dicom(gray.astype(np.uint16) * 16, 12, window=(2048.0, 4096.0))
    return files


def _png16(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gray.astype(np.uint16) * 257).save(buffer, "PNG")
    return buffer.getvalue()


def _real_xray() -> Path | None:
    """The first training X-ray, when the data is there (the fuzzing runs without it too)."""
    folder = training_folder() / "NORMAL"
    return min(folder.glob("*.jpeg"), default=None) if folder.is_dir() else None


def _files() -> dict[str, bytes]:
    real = _real_xray()
    if real is None:
        return real_files(chest_like(96, 255))
    return {"real X-ray JPEG": real.read_bytes(), **real_files(np.asarray(Image.open(real).convert("L")))}


FILES = _files()


@given(st.sampled_from(MAGICS), st.binary(max_size=2048))
def test_random_bytes_behind_any_signature(magic: bytes, tail: bytes) -> None:
    outcome(magic + tail)


@given(st.sampled_from(sorted(FILES)), st.floats(0.0, 1.0))
def test_truncated_real_files(name: str, fraction: float) -> None:
    data = FILES[name]
    outcome(data[: int(len(data) * fraction)])


@given(
    st.sampled_from(sorted(FILES)),
    st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_real_files(name: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(FILES[name])
    for where, value in flips:
        data[int(where * len(data))] = value
    outcome(bytes(data))


@given(st.sampled_from(sorted(FILES)), st.binary(min_size=1, max_size=64), st.floats(0.0, 1.0))
def test_inserted_bytes_in_real_files(name: str, inserted: bytes, where: float) -> None:
    data = FILES[name]
    cut = int(len(data) * where)
    outcome(data[:cut] + inserted + data[cut:])


QUERY_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=30),
    st.sampled_from(
        [
            "9223372036854775808",
            "99999999999999999999999",
            "1e9",
            "0x10",
            " 1",
            "1.5",
            "²",
            "-0",
            "+5",
            "%00",
            "",
        ]
    ),
)


@pytest.fixture
def fuzz_client(make_app):
    return make_app().test_client()


@given(
    st.sampled_from(["/api/v1/predictions?limit=", "/api/v1/predictions?offset=", "/history?page="]),
    QUERY_VALUES,
)
def test_every_query_number_gives_200_or_400(fuzz_client, path: str, value: str) -> None:
    response = (
        fuzz_client.get(path, query_string=None)
        if not value
        else fuzz_client.get(path.split("?")[0], query_string={path.split("?")[1].rstrip("="): value})
    )
    assert response.status_code in (200, 400), (value, response.status_code)
    if path.startswith("/api/"):
        assert response.is_json


@pytest.fixture
def admin_client(make_app):
    """Signed in as an admin, so the admin pages' query numbers are reached."""
    from conftest import Accounts

    users = Accounts(make_app())
    return users.client(users.admin)


@given(st.sampled_from(["/admin/audit?page=", "/admin/audit?user="]), QUERY_VALUES)
def test_every_admin_query_number_gives_200_or_400(admin_client, path: str, value: str) -> None:
    endpoint, name = path.split("?")
    response = (
        admin_client.get(path, query_string=None)
        if not value
        else admin_client.get(endpoint, query_string={name.rstrip("="): value})
    )
    assert response.status_code in (200, 400), (value, response.status_code)


@given(st.text(max_size=40), st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]))
def test_any_path_and_method_is_never_5xx(fuzz_client, path: str, method: str) -> None:
    response = fuzz_client.open("/" + path.lstrip("/"), method=method)
    assert response.status_code < 500, (path, method, response.status_code)


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_unmutated_files_decode(name: str) -> None:
    assert isinstance(outcome(FILES[name]), DecodedImage)
