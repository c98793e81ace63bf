"""Engine and per-request session; SQLite tuned for several writers, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from pneumoscan.web import schema

EXTENSION = "pneumoscan.db"
SQLITE_BUSY_TIMEOUT_MS = 15_000


def _normalise_url(url: str) -> str:
    """PaaS providers hand out `postgres://`, which SQLAlchemy no longer accepts."""
    return "postgresql://" + url[len("postgres://") :] if url.startswith("postgres://") else url


def _tune_sqlite(dbapi_connection, _record) -> None:
    """WAL lets readers run beside a writer; busy_timeout makes writers queue instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """pool_pre_ping replaces connections that died while the database was away."""
    url = _normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_recycle=1800)


class Database:
    """The app's engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)


def init_app(app: Flask) -> None:
    """Refuse to start on a database behind the code; start anyway if it is unreachable now.

    The pool is emptied afterwards so no connection is inherited by forked gunicorn workers.
    """
    database = Database(app.config["DATABASE_URL"])
    app.extensions[EXTENSION] = database
    try:
        schema.require_current(database.engine)
    except DBAPIError:
        app.logger.warning("database unavailable at start; its schema will not be checked")
    finally:
        database.engine.dispose()
    app.teardown_appcontext(_close_session)


def database() -> Database:
    return current_app.extensions[EXTENSION]


def session() -> Session:
    """One session per request, closed at teardown."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
