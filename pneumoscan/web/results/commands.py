"""Commands that move results: between the stores, out to / in from a zip file, and away.

`flask --app app storage migrate --to database|filesystem|s3` copies every result's files into
the other store, one result per transaction, skipping files already there, so it can be
interrupted and run again; the source is left as it was until STORAGE is switched.
`flask --app app export-data FILE.zip` / `import-data FILE.zip` carry every result (rows as
JSON with their ids and timestamps, images and heatmaps) to another host's empty database.
`flask --app app purge` deletes results older than RETENTION_DAYS.
"""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pneumoscan.web import audit, db
from pneumoscan.web.models import Result, User
from pneumoscan.web.results import retention
from pneumoscan.web.results.upload_flow import save_result
from pneumoscan.web.storage import STORAGES, Store, make_store, upload_store

ROWS_ENTRY = "predictions.json"
FILES_FOLDER = "files/"
# The uploader travels as an email: account ids differ between databases.
COLUMNS = [column.key for column in Result.__table__.columns if column.key != "uploaded_by_id"]
# A column that may be empty may also be absent: archives written before it existed lack it.
OPTIONAL = {column.key for column in Result.__table__.columns if column.nullable}

storage = AppGroup("storage", help="Move stored images and heatmaps between STORAGE backends.")


def _file_names(row: Result) -> list[str]:
    return [row.image_path, row.heatmap_path]


def _read(store: Store, name: str, session: Session) -> bytes:
    source = store.read(name, session)
    if source is None:
        raise click.ClickException(f"{name} is missing from the {current_app.config['STORAGE']} store")
    return source


def _all_rows(session: Session):
    return session.scalars(select(Result).order_by(Result.created_at, Result.id))


@storage.command("migrate")
@click.option("--to", "target_kind", type=click.Choice(STORAGES), required=True)
def migrate_storage(target_kind: str) -> None:
    """Copy every result's files from the STORAGE in use into TARGET (resumable)."""
    source = upload_store()
    if target_kind == current_app.config["STORAGE"]:
        raise click.ClickException(f"STORAGE is already {target_kind}; nothing to copy")
    target = make_store(target_kind, current_app.config)
    reading, writing = db.session(), db.database().sessions()
    copied = skipped = 0
    try:
        for row in _all_rows(reading):
            missing = [name for name in _file_names(row) if target.read(name, writing) is None]
            skipped += len(_file_names(row)) - len(missing)
            if missing:
                target.put({name: _read(source, name, reading) for name in missing}, writing)
                writing.commit()
                copied += len(missing)
    finally:
        writing.close()
    click.echo(f"copied {copied} file(s), {skipped} already in the {target_kind} store")
    click.echo(f"set STORAGE={target_kind} and restart to serve from it")


@click.command("export-data")
@with_appcontext
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
def export_data(archive: Path) -> None:
    """Write every result (rows as JSON, images and heatmaps) to ARCHIVE (a .zip)."""
    session, store = db.session(), upload_store()
    rows = []
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        for row in _all_rows(session):
            record = {key: getattr(row, key) for key in COLUMNS}
            record["created_at"] = row.created_at.isoformat()
            record["uploaded_by"] = row.uploaded_by.email if row.uploaded_by else None
            rows.append(record)
            for name in _file_names(row):
                bundle.writestr(FILES_FOLDER + name, _read(store, name, session))
        bundle.writestr(ROWS_ENTRY, json.dumps(rows, indent=1))
    audit.add(session, audit.EXPORT, detail=f"{len(rows)} result(s) to {archive.name}")
    session.commit()
    click.echo(f"exported {len(rows)} result(s) to {archive}")


@click.command("import-data")
@with_appcontext
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_data(archive: Path) -> None:
    """Restore the results in ARCHIVE (from export-data) into an empty database, ids and times kept."""
    session, store = db.session(), upload_store()
    if session.scalar(select(func.count()).select_from(Result)):
        raise click.ClickException("the database already holds results; import-data needs an empty one")
    with zipfile.ZipFile(archive) as bundle:
        records = json.loads(bundle.read(ROWS_ENTRY))
        account_ids = dict(session.execute(select(User.email, User.id)).all())
        for record in records:
            row = Result(
                **{
                    key: record.get(key) if key in OPTIONAL else record[key]
                    for key in COLUMNS
                    if key != "created_at"
                },
                created_at=datetime.fromisoformat(record["created_at"]),
                uploaded_by_id=account_ids.get(record.get("uploaded_by")),
            )
            files = {name: bundle.read(FILES_FOLDER + name) for name in _file_names(row)}
            save_result(row, files, store, session)
    click.echo(f"imported {len(records)} result(s) from {archive}")


@click.command("purge")
@with_appcontext
def purge() -> None:
    """Delete results older than RETENTION_DAYS, with their files (run it daily)."""
    days = current_app.config["RETENTION_DAYS"]
    if days is None:
        click.echo("RETENTION_DAYS is not set: results are kept; nothing deleted")
        return
    session, store = db.session(), upload_store()
    removed, files = retention.purge(session, store, days)
    session.commit()
    store.remove(files)
    click.echo(f"deleted {removed} result(s) older than {days} day(s)")


def init_app(app: Flask) -> None:
    app.cli.add_command(storage)
    app.cli.add_command(export_data)
    app.cli.add_command(import_data)
    app.cli.add_command(purge)
