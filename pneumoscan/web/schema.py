"""Which revision the database is at, bringing it to the code's, and telling a stale schema from an outage.

The schema is changed only by Alembic revisions (pneumoscan/web/migrations): `alembic upgrade
head` is the Procfile's release step and runs before `make run`. An app refuses to start on a
database that is behind, rather than failing request by request.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

UPGRADE_COMMAND = "alembic upgrade head"
# PostgreSQL's undefined_table and undefined_column; SQLite only says it in words.
_MISSING_SQLSTATES = {"42P01", "42703"}
_SQLITE_MISSING = ("no such table", "no such column", "has no column named")


class SchemaBehind(RuntimeError):
    """The database is not at the revision this code needs (normally behind it)."""


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """The package's migrations, wherever it runs from (alembic.ini points at the same folder)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision, the one this code expects."""
    return _scripts().get_current_head()


def current(engine: Engine) -> str | None:
    """The database's revision. Alembic's two INFO lines about its context are muted here: they
    would open every `flask` command and say nothing; `alembic upgrade` still logs its steps."""
    quiet = logging.getLogger("alembic.runtime.migration")
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        quiet.setLevel(level)


def upgrade(engine: Engine) -> None:
    """What `alembic upgrade head` does, on the given engine (tests, scripts)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def require_current(engine: Engine) -> None:
    """Raise SchemaBehind, naming the command that fixes it, unless the database is at head.

    A revision this code does not know means the database was upgraded by newer code (a
    deploy rolled back): upgrading cannot help, so that is said instead.
    """
    found, wanted = current(engine), head()
    if found is not None and found not in {script.revision for script in _scripts().walk_revisions()}:
        raise SchemaBehind(
            f"the database schema is at revision {found}, which this code does not know: "
            "it was upgraded by a newer version of PneumoScan; deploy that version again"
        )
    if found != wanted:
        raise SchemaBehind(
            f"the database schema is at revision {found or 'none'} but this code needs {wanted}; "
            f"run `{UPGRADE_COMMAND}` (the Procfile's release step; `make run` does it) and start again"
        )


def is_mismatch(error: BaseException) -> bool:
    """True when the database answered but lacks a table or column: a stale schema, not an outage."""
    if not isinstance(error, DBAPIError):
        return False
    driver_error = error.orig
    if getattr(driver_error, "sqlstate", None) in _MISSING_SQLSTATES:
        return True
    return type(driver_error).__module__.startswith("sqlite3") and any(
        phrase in str(driver_error) for phrase in _SQLITE_MISSING
    )
