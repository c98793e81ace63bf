"""Stored files that no row refers to, removed on a clock rather than only when a worker starts.

A worker killed between placing an upload's files and committing its row leaves them behind,
and they may hold patient pixels. Every worker sweeps when it starts and then at most every
SWEEP_SECONDS, on the first request after that (a platform's /healthz polls count), so such
files go within ORPHAN_SECONDS + SWEEP_SECONDS whatever the worker churn. `flask --app app
sweep` does the same from a scheduler and looks at the whole folder, not only the last day.

This is the one sweep, at start and on the clock, and only for STORAGE=filesystem: the database
store writes a result's files and its row in one transaction, so it leaves no orphans, and
there the clock is off and the command says so.
"""

from __future__ import annotations

import threading
import time

import click
from flask import Flask, current_app, request
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pneumoscan.web import db, storage
from pneumoscan.web.models import Result
from pneumoscan.web.storage import ORPHAN_WINDOW_SECONDS, Store, upload_store

EXTENSION = "pneumoscan.sweeper"


def sweep_orphans(
    store: Store, session: Session, batch: int = 500, window: float | None = ORPHAN_WINDOW_SECONDS
) -> int:
    """Remove stored files that no row refers to; returns how many.

    A worker killed between placing an upload's two files and committing its row (a window
    of a few file operations) leaves such files; only settled files are considered, so an
    upload still in flight is never touched.
    """
    groups = store.settled_files(window)
    ids = list(groups)
    known: set[str] = set()
    for start in range(0, len(ids), batch):
        known.update(session.scalars(select(Result.id).where(Result.id.in_(ids[start : start + batch]))))
    orphans = [name for prediction_id in ids if prediction_id not in known for name in groups[prediction_id]]
    store.remove(orphans)
    return len(orphans)


class Clock:
    """When the next sweep is due; one thread takes each turn."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.due = time.monotonic() + interval
        self.lock = threading.Lock()

    def take_turn(self) -> bool:
        if time.monotonic() < self.due:
            return False
        with self.lock:
            if time.monotonic() < self.due:
                return False
            self.due = time.monotonic() + self.interval
            return True


def sweep(window: float | None = ORPHAN_WINDOW_SECONDS) -> int:
    """Remove orphaned and stale temporary files now; returns how many. Its own database session,
    so a failure here leaves the request's session untouched. Nothing to do for the database store."""
    store = upload_store()
    store.ensure()
    removed = store.sweep_stale()
    try:
        with db.database().sessions() as session:
            removed += sweep_orphans(store, session, window=window)
    except SQLAlchemyError:
        current_app.logger.warning("database unavailable; stored files not checked against it")
    else:
        if removed:
            current_app.logger.info("removed %d stored file(s) that no result refers to", removed)
    return removed


def _sweep_when_due() -> None:
    """Not on /livez, which must answer without I/O (readiness polls still count)."""
    if request.endpoint == "health.livez":
        return
    clock: Clock | None = current_app.extensions.get(EXTENSION)
    if clock is not None and clock.take_turn():
        sweep()


@click.command("sweep")
@with_appcontext
def sweep_command() -> None:
    """Remove stored files that no result refers to, of any age (STORAGE=filesystem)."""
    if not upload_store().leaves_orphans:
        click.echo("nothing to sweep: STORAGE=database writes files and rows in one transaction")
        return
    click.echo(f"removed {sweep(window=None)} file(s)")


def init_app(app: Flask) -> None:
    """Sweep once now, then on the clock; SWEEP_SECONDS 0 leaves only the start and the command.

    The pool is emptied after the start sweep, as after the schema check, so no connection is
    inherited by forked workers."""
    app.cli.add_command(sweep_command)
    if not app.extensions[storage.EXTENSION].leaves_orphans:
        return
    with app.app_context():
        sweep()
        db.database().engine.dispose()
    interval = app.config["SWEEP_SECONDS"]
    app.extensions[EXTENSION] = Clock(interval) if interval else None
    app.before_request(_sweep_when_due)
