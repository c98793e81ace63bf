"""Storage: a result is a row plus two files under generated names, or nothing at all."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from pneumoscan.decode import decode_image
from pneumoscan.web import db
from pneumoscan.web.models import Result
from pneumoscan.web.results.filenames import sanitise_filename
from pneumoscan.web.storage import TEMP_PREFIX, UploadStore


def stored(app) -> tuple[int, list[str]]:
    """Rows in the table and every file (temporaries included) in the upload folder."""
    with app.app_context():
        rows = db.session().scalar(select(func.count()).select_from(Result))
    return rows, sorted(os.listdir(app.config["UPLOAD_FOLDER"]))


def post(client, data: bytes, name: str = "xray.jpeg"):
    return client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), name)})


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\dr\\chest.jpeg", "chest.jpeg"),
        ("sc\x00an\x1b[31m.png\r\n", "scan[31m.png"),
        ("..", "upload"),
        ("a..b.jpeg", "ab.jpeg"),
        ("Röntgen_Zoë_胸部.jpeg", "Röntgen_Zoë_胸部.jpeg"),
        ("", "upload"),
        (None, "upload"),
        (".hidden.png", "hidden.png"),
    ],
)
def test_sanitise_filename(raw, kept):
    assert sanitise_filename(raw) == kept


def test_result_is_stored_under_generated_names(make_app, xray_paths):
    app = make_app(KEEP_FILENAMES=True)
    client = app.test_client()
    body = post(client, xray_paths[0].read_bytes(), "../../Zoë's X-ray.jpeg").json

    rows, files = stored(app)
    assert rows == 1
    assert files == sorted([f"{body['id']}.jpg", f"{body['id']}.heatmap.png"])
    with app.app_context():
        row = db.session().get(Result, body["id"])
    assert row.original_filename == "Zoë's X-ray.jpeg"
    assert row.source_format == "jpeg" and row.sha256 and row.inference_ms > 0
    with Image.open(xray_paths[0]) as image:
        assert (row.width, row.height) == image.size


def test_dicom_is_kept_only_as_png_of_its_pixels(app, client, xray_paths):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    pixels = np.asarray(Image.open(xray_paths[0]).convert("L"))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.PatientName = "Doe^Jane"
    dataset.PatientID = "PHI-12345"
    dataset.Modality = "CR"
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)

    response = post(client, buffer.getvalue(), "study.dcm")

    assert response.status_code == 201, response.json
    _, files = stored(app)
    assert f"{response.json['id']}.png" in files
    kept = client.get(response.json["image_url"])
    assert kept.headers["Content-Type"] == "image/png"
    derived = decode_image(buffer.getvalue()).gray
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(kept.data))), derived)
    for name in files:
        content = (Path(app.config["UPLOAD_FOLDER"]) / name).read_bytes()
        assert b"PHI-12345" not in content and b"Doe^Jane" not in content


def test_failed_rename_leaves_neither_row_nor_file(app, client, xray_paths, monkeypatch):
    calls = []
    real_replace = os.replace

    def fail_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    response = post(client, xray_paths[0].read_bytes())

    assert response.status_code == 507
    assert "storage is full" in response.json["error"] and "No space" not in response.json["error"]
    assert len(calls) == 2
    assert stored(app) == (0, [])


def test_failed_commit_removes_both_files(app, client, xray_paths, monkeypatch):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def refuse(self):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(Session, "commit", refuse)
    response = post(client, xray_paths[0].read_bytes())

    assert response.status_code == 503
    monkeypatch.undo()
    assert stored(app) == (0, [])


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("pixels", "reason"),
    [
        (np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8), "colour"),
        (np.full((300, 300), 128, dtype=np.uint8), "blank"),
    ],
)
def test_not_an_xray_is_422_and_leaves_nothing(app, client, pixels, reason):
    response = post(client, png_bytes(pixels), "photo.png")

    assert response.status_code == 422
    assert "chest X-ray" in response.json["error"] and reason in response.json["error"]
    assert stored(app) == (0, [])


def test_stale_temporaries_of_dead_workers_are_swept_at_start(make_app, tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(finished.stdout)
    stale = folder / f"{TEMP_PREFIX}{dead_pid}-abc.png"
    live = folder / f"{TEMP_PREFIX}{os.getppid()}-def.png"
    kept = folder / "11111111-1111-4111-8111-111111111111.png"
    for path in (stale, live, kept):
        path.write_bytes(b"x")

    make_app()

    assert not stale.exists()
    assert live.exists() and kept.exists()


def test_settled_files_without_a_row_are_swept_at_start(make_app, client, xray_paths, tmp_path):
    """What a worker killed between placing the files and committing the row leaves behind."""
    kept = post(client, xray_paths[0].read_bytes()).get_json()["id"]
    folder = tmp_path / "uploads"
    orphan = [
        folder / "22222222-2222-4222-8222-222222222222.jpg",
        folder / "22222222-2222-4222-8222-222222222222.heatmap.png",
    ]
    in_flight = folder / "33333333-3333-4333-8333-333333333333.png"
    for path in (*orphan, in_flight):
        path.write_bytes(b"x")
    an_hour_ago = os.path.getmtime(in_flight) - 3600
    for path in (*orphan, *folder.glob(f"{kept}*")):
        os.utime(path, (an_hour_ago, an_hour_ago))

    app = make_app()

    rows, files = stored(app)
    assert rows == 1
    assert files == sorted([f"{kept}.heatmap.png", f"{kept}.jpg", in_flight.name])


def test_store_refuses_names_that_are_not_its_own(tmp_path):
    store = UploadStore(tmp_path / "uploads")
    name = f"{uuid.uuid4()}.png"
    store.put({name: b"1"})
    (tmp_path / "secret.png").write_bytes(b"2")

    assert store.path(name) == tmp_path / "uploads" / name
    assert store.path(f"{uuid.uuid4()}.png") is None
    for other in (
        "../secret.png",
        str(tmp_path / "secret.png"),
        ".tmp-1-a.png",
        "a.txt",
        "a.png",
        f"{name}/x.png",
    ):
        assert store.path(other) is None, other
        with pytest.raises(ValueError, match="not a stored file name"):
            store.put({other: b"3"})
    store.remove(["../secret.png", str(tmp_path / "secret.png")])
    assert (tmp_path / "secret.png").read_bytes() == b"2"
    shutil.rmtree(tmp_path / "uploads")
    assert store.path(name) is None
