"""Refused uploads counted per reason and UTC day for the dashboard; nothing of the upload is kept."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from pneumoscan.web.models import RefusalCount

MAX_REASON = 120
# Sizes, counts and UIDs vary with the file; every other word of a refusal is fixed by its cause.
_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")


def reason_code(message: str) -> str:
    """The refusal's fixed reason: its message with every number as N, so files of a thousand
    sizes count as one reason (`the image is too small: NxN pixels; ...`)."""
    return _NUMBERS.sub("N", message)[:MAX_REASON]


_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
logger = logging.getLogger(__name__)


def count(engine: Engine, reason: str, day: date | None = None) -> None:
    """Add one to (day, reason) in a transaction of its own, so it stays counted whatever the
    request does next. One insert-or-update statement, so concurrent refusals never lose a count
    or collide on the key. A database that fails here costs the count, not the refusal's answer."""
    insert = _INSERTS[engine.dialect.name](RefusalCount).values(
        day=day or datetime.now(UTC).date(), reason=reason_code(reason), count=1
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[RefusalCount.day, RefusalCount.reason], set_={"count": RefusalCount.count + 1}
    )
    try:
        with engine.begin() as connection:
            connection.execute(upsert)
    except SQLAlchemyError:
        logger.warning("could not count a refused upload", exc_info=True)
