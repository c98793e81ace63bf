"""Alembic's entry point: the app's metadata, and the connection the caller passed or DATABASE_URL's."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from pneumoscan.web.config import INSTANCE_PATH, database_url, stop_on_bad_setting
from pneumoscan.web.db import make_engine
from pneumoscan.web.models import Base


def _migrate(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things, so later revisions copy the table instead.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _migrate(given)
else:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    with stop_on_bad_setting():
        engine = make_engine(database_url(INSTANCE_PATH))
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()
