"""export-data / import-data against hostile archives: no name or path is taken from the archive,
an import is whole or nothing, reading is bounded, and a backup restores the whole site."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime

import pytest
from conftest import PASSWORD, Accounts, add_result, post_login, run_flask
from sqlalchemy import func, select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent, RefusalCount, Result, Review, SiteThreshold, StoredFile, User
from pneumoscan.web.results import refusals

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def row(prediction_id: str | None = None, **changes) -> dict:
    prediction_id = prediction_id or str(uuid.uuid4())
    record = {
        "id": prediction_id,
        "created_at": "2026-01-02T03:04:05.678901+00:00",
        "original_filename": "",
        "sha256": "0" * 64,
        "width": 512,
        "height": 512,
        "source_format": "png",
        "probability": 0.25,
        "label": "NORMAL",
        "threshold": 0.5,
        "model_version": "test-model",
        "inference_ms": 10.0,
        "image_path": f"{prediction_id}.png",
        "heatmap_path": f"{prediction_id}.heatmap.png",
        "uploaded_by": None,
    }
    return record | changes


def write_archive(path, rows: list[dict], files: dict[str, bytes] | None = None, **tables) -> None:
    if files is None:
        files = {}
        for record in rows:
            files[f"{record['id']}.png"] = PNG
            files[f"{record['id']}.heatmap.png"] = PNG
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(f"files/{name}", data)
        bundle.writestr("predictions.json", json.dumps(rows))
        for name, items in tables.items():
            bundle.writestr(f"{name}.json", json.dumps(items))


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        session = db.session()
        return tuple(
            session.scalar(select(func.count()).select_from(model)) for model in (Result, Review, StoredFile)
        )


def uploads(tmp_path) -> list[str]:
    folder = tmp_path / "uploads"
    return sorted(entry.name for entry in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(
    "image_path", ["../escaped.png", "/ABSOLUTE", "{id}/../../x.png", ".{id}.png", "{id}.exe", "other.png"]
)
def test_a_path_from_the_archive_is_refused_and_nothing_is_written(make_app, tmp_path, image_path):
    app = make_app()
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"keep me")
    prediction_id = str(uuid.uuid4())
    image_path = image_path.replace("ABSOLUTE", str(victim).lstrip("/")).replace("{id}", prediction_id)
    archive = tmp_path / "hostile.zip"
    write_archive(
        archive,
        [row(prediction_id, image_path=image_path)],
        {image_path: b"overwritten", f"{prediction_id}.heatmap.png": PNG},
    )

    result = run_flask(app, "import-data", str(archive))

    assert (
        result.exit_code != 0 and "predictions.json row 1" in result.output and "image_path" in result.output
    )
    assert victim.read_bytes() == b"keep me" and not (tmp_path / "escaped.png").exists()
    assert counts(app) == (0, 0, 0) and uploads(tmp_path) == []


def test_a_row_already_naming_an_outside_path_is_never_written_or_removed(make_app, tmp_path):
    """Rows from before this check (or written by hand): delete, purge and migrate leave the path alone."""
    app = make_app(RETENTION_DAYS=1)
    users = Accounts(app)
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"keep me")
    doomed = add_result(app)
    old = add_result(app, created_at=datetime(2020, 1, 1, tzinfo=UTC))
    with app.app_context():
        session = db.session()
        for prediction_id in (doomed, old):
            session.get(Result, prediction_id).image_path = str(victim)
        session.commit()

    migrated = run_flask(app, "storage", "migrate", "--to", "database")
    assert migrated.exit_code != 0 and "not a stored file name" in migrated.output
    admin = {"Authorization": f"Bearer {users.token(users.admin)}"}
    assert app.test_client().delete(f"/api/v1/predictions/{doomed}", headers=admin).status_code == 204
    assert run_flask(app, "purge").exit_code == 0

    assert victim.read_bytes() == b"keep me" and counts(app)[0] == 0


def test_a_duplicate_id_imports_nothing_and_a_rerun_then_works(make_app, tmp_path):
    app = make_app()
    first, second = row(), row()
    archive = tmp_path / "twice.zip"
    write_archive(archive, [first, row(first["id"]), second])

    result = run_flask(app, "import-data", str(archive))

    assert result.exit_code != 0 and "predictions.json row 2" in result.output and "twice" in result.output
    assert counts(app) == (0, 0, 0) and uploads(tmp_path) == []
    write_archive(archive, [first, second])
    assert run_flask(app, "import-data", str(archive)).exit_code == 0
    assert counts(app)[0] == 2 and len(uploads(tmp_path)) == 4


def test_a_row_without_a_field_is_named_and_nothing_is_imported(make_app, tmp_path):
    app = make_app()
    broken = row()
    del broken["label"]
    archive = tmp_path / "missing.zip"
    write_archive(archive, [row(), broken])

    result = run_flask(app, "import-data", str(archive))

    assert result.exit_code == 1 and not isinstance(result.exception, KeyError)
    assert "predictions.json row 2: label: Field required" in result.output
    assert counts(app) == (0, 0, 0) and uploads(tmp_path) == []


@pytest.mark.parametrize("storage", ["filesystem", "database"])
def test_a_failure_while_writing_leaves_the_database_and_the_store_as_they_were(
    make_app, tmp_path, storage, monkeypatch
):
    """The archive checks out; the disk then fills at the third result: the files already placed
    go again and no row stays, so a rerun starts from the same empty site."""
    from pneumoscan.web import storage as stores

    app = make_app(STORAGE=storage)
    archive = tmp_path / "late.zip"
    write_archive(archive, [row() for _ in range(3)])
    store_class = stores.UploadStore if storage == "filesystem" else stores.DatabaseStore
    real_put, calls = store_class.put, []

    def put_until_full(self, files, session=None):
        calls.append(files)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_put(self, files, session)

    monkeypatch.setattr(store_class, "put", put_until_full)
    result = run_flask(app, "import-data", str(archive))

    assert result.exit_code != 0 and len(calls) == 3
    assert counts(app) == (0, 0, 0) and uploads(tmp_path) == []
    monkeypatch.setattr(store_class, "put", real_put)
    assert run_flask(app, "import-data", str(archive)).exit_code == 0 and counts(app)[0] == 3


def test_a_review_of_an_unknown_result_or_a_missing_file_is_refused_before_writing(make_app, tmp_path):
    app = make_app()
    rows = [row(), row()]
    archive = tmp_path / "gap.zip"
    write_archive(archive, rows, {f"{rows[0]['id']}.png": PNG, f"{rows[0]['id']}.heatmap.png": PNG})
    result = run_flask(app, "import-data", str(archive))
    assert result.exit_code != 0 and f"files/{rows[1]['id']}.png is missing" in result.output

    review = {"id": 1, "prediction_id": str(uuid.uuid4()), "version": 1, "finding": "NORMAL"}
    write_archive(archive, rows, reviews=[review | {"created_at": "2026-01-02T03:04:05+00:00"}])
    result = run_flask(app, "import-data", str(archive))
    assert result.exit_code != 0 and "reviews.json row 1: prediction_id" in result.output
    assert counts(app) == (0, 0, 0) and uploads(tmp_path) == []


# The peak is this process's own (VmHWM belongs to the memory map exec made): ru_maxrss would carry
# over the high-water mark of the test process that forked it.
BOMB = r"""
import re, sys, zipfile
from pneumoscan.web.results import archive_files, backup
with zipfile.ZipFile(sys.argv[1]) as bundle:
    try:
        backup.check_archive(bundle)
    except archive_files.BadArchive as problem:
        print("refused:", problem)
status = open("/proc/self/status").read()
print("peak_mib", int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024)
"""


def _bomb(path, mebibytes: int, declared_honestly: bool) -> None:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle,
        bundle.open("predictions.json", "w", force_zip64=True) as entry,
    ):
        entry.write(b"[")
        chunk = b" " * (1024 * 1024)
        for _ in range(mebibytes):
            entry.write(chunk)
        entry.write(b"]")
    if not declared_honestly:
        # A header that says 2 bytes: the reader stops at the declared size and the CRC check fails.
        data = bytearray(path.read_bytes())
        central = data.rfind(b"PK\x01\x02")
        data[central + 24 : central + 28] = (2).to_bytes(4, "little")
        path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("mebibytes", "declared_honestly", "refused"), [(512, True, True), (512, False, True), (200, True, False)]
)
def test_an_archive_that_inflates_to_hundreds_of_mib_is_read_in_bounded_memory(
    tmp_path, mebibytes, declared_honestly, refused
):
    """Over the limit: refused from its header, or (a lying header) when the bytes read pass it.
    Under it: parsed as a stream, so memory stays that of the imported modules."""
    archive = tmp_path / "bomb.zip"
    _bomb(archive, mebibytes, declared_honestly)
    assert archive.stat().st_size < 2 * 1024 * 1024

    result = subprocess.run(
        [sys.executable, "-c", BOMB, str(archive)], capture_output=True, text=True, timeout=300, check=False
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0 and ("refused:" in output) == refused, output
    peak = int(output.split("peak_mib", 1)[1].split()[0])
    print(f"{mebibytes} MiB bomb (declared honestly: {declared_honestly}): peak {peak} MiB; {output.strip()}")
    assert peak < 250


def test_a_site_round_trips_sqlite_to_postgresql_and_back_with_identical_rows(make_app, tmp_path, postgres):
    source = make_app()
    users = Accounts(source)
    with source.app_context():
        session = db.session()
        threshold = SiteThreshold(model_version="test-model", threshold=0.4, previous_threshold=0.5)
        session.add(threshold)
        session.commit()
        threshold_id = threshold.id
    ids = [
        add_result(source, findings=["NORMAL", "PNEUMONIA"], uploaded_by=users.clinician) for _ in range(3)
    ]
    with source.app_context():
        session = db.session()
        session.get(Result, ids[0]).site_threshold_id = threshold_id
        session.get(Review, 1).reviewer_id = users.clinician.id
        session.commit()
        for prediction_id in ids:
            folder = tmp_path / "uploads"
            folder.mkdir(exist_ok=True)
            (folder / f"{prediction_id}.png").write_bytes(PNG + prediction_id.encode())
            (folder / f"{prediction_id}.heatmap.png").write_bytes(PNG)
    refusals.count(source.extensions[db.EXTENSION].engine, "too small")

    there = tmp_path / "there.zip"
    assert run_flask(source, "export-data", str(there), "--include-accounts").exit_code == 0
    assert stat.S_IMODE(there.stat().st_mode) == 0o600
    middle = make_app(
        DATABASE_URL=postgres.new_database(), STORAGE="database", UPLOAD_FOLDER=str(tmp_path / "m")
    )
    imported = run_flask(middle, "import-data", str(there))
    assert imported.exit_code == 0 and "imported 3 result(s)" in imported.output, imported.output
    back = tmp_path / "back.zip"
    assert run_flask(middle, "export-data", str(back), "--include-accounts").exit_code == 0
    final = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'final.sqlite'}", UPLOAD_FOLDER=str(tmp_path / "f"))
    assert run_flask(final, "import-data", str(back)).exit_code == 0

    assert site(final) == site(source)
    assert sorted(p.read_bytes() for p in (tmp_path / "f").iterdir()) == sorted(
        p.read_bytes() for p in (tmp_path / "uploads").iterdir()
    )
    with middle.app_context():
        session = db.session()
        session.add(SiteThreshold(model_version="test-model", threshold=0.3, previous_threshold=0.4))
        session.add(Review(prediction_id=ids[1], version=3, finding="UNSURE"))
        session.commit()
    assert post_login(final.test_client(), users.clinician.email).status_code == 303


def site(app) -> dict[str, list]:
    """Every row of every table a backup carries, as comparable tuples (people by email)."""
    with app.app_context():
        session = db.session()

        def rows(model, drop=("id",), order=None):
            columns = [c.key for c in model.__table__.columns if c.key not in drop]
            found = session.scalars(select(model).order_by(*(order or model.__table__.primary_key.columns)))
            return [tuple(getattr(item, c) for c in columns) for item in found]

        email = dict(session.execute(select(User.id, User.email)).all())
        uploaders = [email.get(r.uploaded_by_id) for r in session.scalars(select(Result).order_by(Result.id))]
        return {
            "results": rows(Result, drop=("uploaded_by_id",)),
            "uploaders": uploaders,
            "reviews": [
                (v.id, v.prediction_id, v.version, v.finding, email.get(v.reviewer_id), v.created_at)
                for v in session.scalars(select(Review).order_by(Review.id))
            ],
            "thresholds": rows(SiteThreshold, drop=("set_by_id",)),
            "refusals": rows(RefusalCount, drop=()),
            "audit": [
                (e.created_at, e.action, e.target_id, email.get(e.user_id), e.detail)
                for e in session.scalars(select(AuditEvent).order_by(AuditEvent.created_at, AuditEvent.id))
                if e.action not in ("export", "import")
            ],
            "accounts": [
                (u.email, u.password_hash, u.role) for u in session.scalars(select(User).order_by(User.email))
            ],
        }


def test_accounts_travel_only_when_asked(make_app, tmp_path):
    source = make_app()
    Accounts(source)
    archive = tmp_path / "plain.zip"
    assert run_flask(source, "export-data", str(archive)).exit_code == 0
    with zipfile.ZipFile(archive) as bundle:
        assert "accounts.json" not in bundle.namelist()
        assert PASSWORD not in bundle.read("audit_events.json").decode()
    target = make_app(
        DATABASE_URL=f"sqlite:///{tmp_path / 'target.sqlite'}", UPLOAD_FOLDER=str(tmp_path / "t")
    )
    assert run_flask(target, "import-data", str(archive)).exit_code == 0
    with target.app_context():
        assert db.session().scalar(select(func.count()).select_from(User)) == 0
