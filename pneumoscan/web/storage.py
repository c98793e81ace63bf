"""Where images and heatmaps live: a folder (STORAGE=filesystem), a table (STORAGE=database) or
a bucket (STORAGE=s3, pneumoscan.web.s3_storage).

Both stores keep files under generated names and take part in the same all-or-nothing write:
`put` before the result's row is committed, `remove` of what was put if the commit fails.
The database store adds its rows to the result's own session, so they commit or roll back
with it; that is what lets several instances on one PaaS share every file.

The folder store writes files whole or not at all.

Each file is written to a temporary name carrying the writer's pid, then renamed into place,
so a reader never sees half a file and a worker killed mid-write leaves only a temporary file
that `sweep_stale` removes at the next start. Files are not fsynced: like the SQLite database
(WAL, synchronous=NORMAL), the store survives a killed process but not a power cut in the
last moments, and an fsync per file would be a noticeable share of an upload's time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, current_app
from sqlalchemy import Connection, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from pneumoscan.web.models import StoredFile
from pneumoscan.web.store_names import (
    ORPHAN_SECONDS,
    ORPHAN_WINDOW_SECONDS,
    check_name,
    is_stored_name,
)

TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600
STORAGES = ("filesystem", "database", "s3")

EXTENSION = "pneumoscan.store"

log = logging.getLogger(__name__)


class Store(Protocol):
    """What the rest of the app knows of a store; which one STORAGE chose stays in this module."""

    leaves_orphans: bool
    """Whether files can outlive a failed commit, so the orphan sweep has work to do."""

    def ensure(self) -> None:
        """Make the place files go, if it is missing."""

    def read(self, name: str, session: Session) -> bytes | None:
        """The file's bytes, or None if the name is not one of ours or is gone."""

    def put(self, files: dict[str, bytes], session: Session) -> list[str]:
        """Place the files for a row about to be committed; returns what to remove if that commit fails."""

    def remove(self, names: list[str]) -> None:
        """Undo a `put` whose commit failed."""

    def delete(self, names: list[str], session: Session) -> None:
        """Delete a result's files as part of `session` (or, for files outside it, after its commit)."""

    def settled_files(self, window: float | None = ORPHAN_WINDOW_SECONDS) -> dict[str, list[str]]:
        """Files old enough that no upload in flight wrote them, by the prediction id in their name."""

    def sweep_stale(self) -> int:
        """Remove temporaries that dead writers left; returns how many."""

    def add_probe_rows(self, connection: Connection, prediction_id: str) -> None:
        """The health check's write, in its rolled-back transaction, of whatever this store keeps there."""

    def files_writable(self, database_state: str) -> str:
        """'ok' or 'unavailable' for the health check, given what the database check found."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class UploadStore:
    """A flat folder of `<uuid>.<ext>` files; names are made here, never taken from a client."""

    leaves_orphans = True

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def ensure(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path | None:
        """The file for a stored name, or None if the name is not one of ours or is gone."""
        if not is_stored_name(name):
            return None
        candidate = self.folder / name
        return candidate if candidate.is_file() else None

    def read(self, name: str, session: Session) -> bytes | None:
        path = self.path(name)
        try:
            return path.read_bytes() if path is not None else None
        except FileNotFoundError:
            return None

    def put(self, files: dict[str, bytes], session: Session | None = None) -> list[str]:
        """Write every file or none: on any failure, temporaries and renamed files are removed.

        Files are written at once, outside `session`; the caller removes them if its commit fails.
        Names are checked first (`check_name`), so a row's path never writes outside the folder.
        """
        for name in files:
            check_name(name)
        self.ensure()
        temporaries: dict[str, Path] = {}
        placed: list[str] = []
        try:
            for name, data in files.items():
                temporary = self.folder / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{Path(name).suffix}"
                temporaries[name] = temporary
                with open(temporary, "wb") as handle:
                    handle.write(data)
            for name, temporary in temporaries.items():
                os.replace(temporary, self.folder / name)
                placed.append(name)
        except BaseException:
            for temporary in temporaries.values():
                temporary.unlink(missing_ok=True)
            self.remove(placed)
            raise
        return placed

    def remove(self, names: list[str]) -> None:
        """Removes only names this store makes: a row naming any other path removes nothing."""
        for name in names:
            if is_stored_name(name):
                (self.folder / name).unlink(missing_ok=True)
            else:
                log.warning("not removing %r: not a stored file name", name)

    def delete(self, names: list[str], session: Session) -> None:
        """Nothing yet: files cannot be rolled back, so the caller removes them after its commit."""

    def settled_files(self, window: float | None = ORPHAN_WINDOW_SECONDS) -> dict[str, list[str]]:
        """Files written more than ten minutes (and, with a `window`, less than that many seconds)
        ago, by the prediction id that starts their name: no upload in flight is that old, and
        the window keeps the frequent sweeps cheap."""
        newest = time.time() - ORPHAN_SECONDS
        oldest = time.time() - window if window is not None else float("-inf")
        groups: dict[str, list[str]] = {}
        for entry in self.folder.iterdir():
            try:
                if (
                    entry.name.startswith(".")
                    or not entry.is_file()
                    or not oldest < entry.stat().st_mtime < newest
                ):
                    continue
            except FileNotFoundError:
                continue
            groups.setdefault(entry.name.split(".", 1)[0], []).append(entry.name)
        return groups

    def sweep_stale(self) -> int:
        """Remove temporaries left by dead processes (or older than an hour); returns how many."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        now = time.time()
        for entry in self.folder.iterdir():
            if not entry.name.startswith(TEMP_PREFIX):
                continue
            pid_text = entry.name[len(TEMP_PREFIX) :].split("-", 1)[0]
            try:
                owner = int(pid_text) if pid_text.isdigit() else None
                owner_alive = owner is not None and owner != os.getpid() and _pid_alive(owner)
                if owner_alive and now - entry.stat().st_mtime < STALE_TEMP_SECONDS:
                    continue
                entry.unlink()
                removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("swept %d stale temporary upload file(s)", removed)
        return removed

    def add_probe_rows(self, connection: Connection, prediction_id: str) -> None:
        """Nothing: this store's files are not in the database."""

    def files_writable(self, database_state: str) -> str:
        """Writes a small file in the folder and removes it again."""
        probe = self.folder / f"{TEMP_PREFIX}{os.getpid()}-healthz-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"ok")
            return "ok"
        except OSError as exc:
            log.warning("health check: upload folder not writable: %s", type(exc).__name__)
            return "unavailable"
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)


class DatabaseStore:
    """Files as rows of `stored_files`, written in the caller's session so they commit with the result."""

    leaves_orphans = False

    def ensure(self) -> None:
        """Nothing: the table is made by the migrations."""

    def read(self, name: str, session: Session) -> bytes | None:
        """Just the bytes, not an object kept in the session: a long command reads every file."""
        return session.scalar(select(StoredFile.data).where(StoredFile.name == name))

    def put(self, files: dict[str, bytes], session: Session) -> list[str]:
        """Add the rows; nothing is left to remove by hand if the commit fails, so returns []."""
        for name in files:
            check_name(name)
        session.add_all(
            StoredFile(name=name, prediction_id=name.split(".", 1)[0], data=data)
            for name, data in files.items()
        )
        return []

    def remove(self, names: list[str]) -> None:
        """Nothing to do: `put` placed nothing outside the session, and a rollback undoes its rows."""

    def delete(self, names: list[str], session: Session) -> None:
        """Deletes the rows in the caller's session, so they go in the same commit as the result."""
        session.execute(sql_delete(StoredFile).where(StoredFile.name.in_(names)))

    def settled_files(self, window: float | None = ORPHAN_WINDOW_SECONDS) -> dict[str, list[str]]:
        """None: files and row commit together, so no file outlives its row."""
        return {}

    def sweep_stale(self) -> int:
        return 0

    def add_probe_rows(self, connection: Connection, prediction_id: str) -> None:
        probe = {"name": f"{prediction_id}.healthz.png", "prediction_id": prediction_id, "data": b"ok"}
        connection.execute(insert(StoredFile).values(**probe))

    def files_writable(self, database_state: str) -> str:
        """What the database check found: it wrote a stored_files row."""
        return database_state


def make_store(kind: str, config: Mapping[str, Any]) -> Store:
    """The store STORAGE names, placed as `config` (the app's) says; refuses anything else so a
    typo is not silently the default."""
    if kind == "filesystem":
        return UploadStore(config["UPLOAD_FOLDER"])
    if kind == "database":
        return DatabaseStore()
    if kind == "s3":
        from pneumoscan.web.s3_storage import S3Store

        return S3Store(config["S3_BUCKET"], config["S3_PREFIX"], config["S3_ENDPOINT_URL"])
    raise ValueError(f"STORAGE must be one of {', '.join(STORAGES)}, got {kind!r}")


def upload_store() -> Store:
    """The current app's store (STORAGE)."""
    return current_app.extensions[EXTENSION]


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = make_store(app.config["STORAGE"], app.config)
