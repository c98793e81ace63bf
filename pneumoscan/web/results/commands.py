"""Commands that move results: between the stores, out to / in from a zip file, and away.

`flask --app app storage migrate --to database|filesystem|s3` copies every result's files into
the other store, one result per transaction, skipping files already there, so it can be
interrupted and run again; the source is left as it was until STORAGE is switched.
`flask --app app export-data FILE.zip` / `import-data FILE.zip` carry the whole site to another
host's database (pneumoscan.web.results.backup).
`flask --app app purge` deletes results older than RETENTION_DAYS.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from pneumoscan.web import db
from pneumoscan.web.models import Result
from pneumoscan.web.results import backup, retention
from pneumoscan.web.results.archive_files import BadArchive
from pneumoscan.web.storage import STORAGES, Store, make_store, upload_store
from pneumoscan.web.store_names import is_stored_name

storage = AppGroup("storage", help="Move stored images and heatmaps between STORAGE backends.")


def _file_names(row: Result) -> list[str]:
    """The row's stored names, refused if the store could not have made them (the same rule as
    every `put`): a row naming a path outside the store copies nothing."""
    names = [row.image_path, row.heatmap_path]
    for name in names:
        if not is_stored_name(name):
            raise click.ClickException(f"result {row.id} names {name!r}, not a stored file name")
    return names


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
@click.option("--include-accounts", is_flag=True, help="Also carry the accounts, with their password hashes.")
def export_data(archive: Path, include_accounts: bool) -> None:
    """Write the whole site (results with their files, reviews, site thresholds, refusal counts,
    audit trail) to ARCHIVE (a .zip readable by its owner only)."""
    session = db.session()
    try:
        count = backup.export_site(session, upload_store(), archive, include_accounts)
    except BadArchive as problem:
        raise click.ClickException(str(problem)) from None
    session.commit()
    click.echo(f"exported {count} result(s) to {archive}")


@click.command("import-data")
@with_appcontext
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_data(archive: Path) -> None:
    """Restore ARCHIVE (from export-data) into a database without results, ids and times kept:
    all of it, or nothing if any row or file is wrong."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            count = backup.import_site(db.session(), upload_store(), bundle)
    except (BadArchive, zipfile.BadZipFile) as problem:
        raise click.ClickException(f"nothing imported: {problem}") from None
    click.echo(f"imported {count} result(s) from {archive}")


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
