"""Alembic owns the schema: databases made before migrations are adopted with their rows, a
database behind the code stops the start, and a stale schema is not mistaken for an outage."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from pneumoscan.web import create_app, db, schema
from pneumoscan.web.models import Base

# The schema as the code of commit d6d48cc (before migrations) created it, per dialect.
LEGACY_DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    id VARCHAR(36) NOT NULL,
    created_at {timestamp} NOT NULL,
    original_filename VARCHAR(255) NOT NULL,
    sha256 VARCHAR(64) NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    source_format VARCHAR(16) NOT NULL,
    probability FLOAT NOT NULL,
    label VARCHAR(16) NOT NULL,
    threshold FLOAT NOT NULL,
    model_version VARCHAR(128) NOT NULL,
    inference_ms FLOAT NOT NULL,
    image_path VARCHAR(255) NOT NULL,
    heatmap_path VARCHAR(255) NOT NULL,
    PRIMARY KEY (id)
)"""
LEGACY_INDEX = "CREATE INDEX IF NOT EXISTS ix_predictions_created_at ON predictions (created_at)"
TIMESTAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP WITH TIME ZONE"}
LEGACY_ROWS = [
    {
        "id": f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-00000000000{n}",
        "created_at": f"2026-01-0{n} 10:00:00.123456",
        "original_filename": f"chest-{n}.jpeg",
        "sha256": f"{n}" * 64,
        "width": 1000 + n,
        "height": 900 + n,
        "source_format": "jpeg",
        "probability": 0.1 * n,
        "label": "PNEUMONIA" if n % 2 else "NORMAL",
        "threshold": 0.5,
        "model_version": "legacy-model",
        "inference_ms": 12.5 * n,
        "image_path": f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-00000000000{n}.jpg",
        "heatmap_path": f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-00000000000{n}.heatmap.png",
    }
    for n in (1, 2, 3)
]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """The URL of an empty database of each kind, and an engine on it disposed afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    engine = db.make_engine(url)
    yield url, engine
    engine.dispose()


def _all_rows(engine) -> list[tuple]:
    """The legacy columns of every row (later revisions add columns, empty for these rows)."""
    with engine.connect() as connection:
        columns = ", ".join(LEGACY_ROWS[0])
        return connection.execute(text(f"SELECT {columns} FROM predictions ORDER BY id")).all()


def test_a_database_made_before_migrations_is_upgraded_with_its_rows(
    empty_database, make_app, tmp_path, model_dir
):
    url, engine = empty_database
    with engine.begin() as connection:
        connection.execute(text(LEGACY_DDL.format(timestamp=TIMESTAMP[engine.dialect.name])))
        connection.execute(text(LEGACY_INDEX))
        for row in LEGACY_ROWS:
            columns = ", ".join(row)
            connection.execute(
                text(f"INSERT INTO predictions ({columns}) VALUES ({', '.join(':' + k for k in row)})"), row
            )
    before = _all_rows(engine)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / LEGACY_ROWS[0]["image_path"]).write_bytes(b"\xff\xd8\xffkept jpeg")

    with pytest.raises(schema.SchemaBehind, match="alembic upgrade head"):
        create_app({"DATABASE_URL": url, "MODEL_DIR": str(model_dir), "SECRET_KEY": "x"})
    schema.upgrade(engine)

    assert schema.current(engine) == schema.head()
    assert _all_rows(engine) == before
    app = make_app(DATABASE_URL=url, UPLOAD_FOLDER=str(uploads))
    client = app.test_client()
    listing = client.get("/api/v1/predictions").get_json()
    assert [item["id"] for item in listing["items"]] == [row["id"] for row in reversed(LEGACY_ROWS)]
    first = client.get(f"/api/v1/predictions/{LEGACY_ROWS[0]['id']}").get_json()
    assert first["created_at"] == "2026-01-01T10:00:00.123456+00:00"
    assert first["probability"] == pytest.approx(0.1) and first["original_filename"] == "chest-1.jpeg"
    assert client.get(first["image_url"]).data == b"\xff\xd8\xffkept jpeg"


def test_the_migrations_build_exactly_the_models_schema(empty_database):
    _, engine = empty_database
    schema.upgrade(engine)

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_upgrading_twice_changes_nothing(empty_database):
    _, engine = empty_database
    schema.upgrade(engine)
    schema.upgrade(engine)

    assert schema.current(engine) == schema.head()


def test_the_app_refuses_to_start_on_a_database_behind_the_code(tmp_path, model_dir):
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    config = {"DATABASE_URL": url, "MODEL_DIR": str(model_dir), "SECRET_KEY": "x"}
    engine = db.make_engine(url)
    with pytest.raises(schema.SchemaBehind, match=r"at revision none .*run `alembic upgrade head`"):
        create_app(config)
    alembic = schema.alembic_config()
    with engine.begin() as connection:
        alembic.attributes["connection"] = connection
        command.upgrade(alembic, "0001_predictions")
    engine.dispose()

    with pytest.raises(
        schema.SchemaBehind, match=f"at revision 0001_predictions but this code needs {schema.head()}"
    ):
        create_app(config)


def test_a_missing_column_is_a_500_naming_the_fix_not_an_outage(empty_database, make_app, caplog):
    url, _ = empty_database
    app = make_app(DATABASE_URL=url)
    with app.app_context(), db.database().engine.begin() as connection:
        connection.execute(text("ALTER TABLE predictions RENAME COLUMN label TO label_renamed"))

    listing = app.test_client().get("/api/v1/predictions")

    assert listing.status_code == 500 and "needs upgrading" in listing.json["error"]
    assert "unavailable" not in listing.json["error"] and "Retry-After" not in listing.headers
    assert "alembic upgrade head" in caplog.text


def test_the_app_refuses_a_database_upgraded_by_newer_code(tmp_path, model_dir):
    url = f"sqlite:///{tmp_path / 'newer.sqlite'}"
    engine = db.make_engine(url)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()

    with pytest.raises(schema.SchemaBehind, match="9999_from_the_future, which this code does not know"):
        create_app({"DATABASE_URL": url, "MODEL_DIR": str(model_dir), "SECRET_KEY": "x"})


def test_the_start_check_logs_no_alembic_info_lines(empty_database, caplog):
    _, engine = empty_database
    schema.upgrade(engine)
    caplog.clear()
    with caplog.at_level("INFO"):
        assert schema.current(engine) == schema.head()
    assert not [record for record in caplog.records if record.name.startswith("alembic")]
