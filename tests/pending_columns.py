"""The subtype and map columns the models have before their Alembic revision lands (it comes with
the subtype branch): added to a test database after `alembic upgrade`, only where missing, so
that tests can store and read them here. Goes, with its call in conftest.migrate, once the
revision is merged."""

from __future__ import annotations

from sqlalchemy import Engine, inspect
from sqlalchemy.schema import CreateColumn

from pneumoscan.web.models import Result, Review

PENDING = {
    Result.__table__: ("viral_probability", "subtype", "subtype_threshold", "map_grid"),
    Review.__table__: ("subtype_finding",),
}


def add_pending_columns(engine: Engine) -> None:
    """ALTER TABLE … ADD COLUMN for each pending column the migrated database lacks."""
    with engine.begin() as connection:
        inspector = inspect(connection)
        for table, names in PENDING.items():
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for name in names:
                if name not in present:
                    ddl = CreateColumn(table.c[name]).compile(dialect=engine.dialect)
                    connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
