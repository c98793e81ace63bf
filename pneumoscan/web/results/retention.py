"""Deleting results: one on request, or every result older than RETENTION_DAYS.

The row goes first, in the same transaction as its audit event, its reviews (also where the
database does not enforce the foreign key's cascade, as SQLite by default) and, with
STORAGE=database, its files' rows. These functions flush; the caller commits, then passes the
names they return to `store.remove`, so files in a folder go only after that commit and a
failure never leaves a result that points at missing files. The audit event keeps only the id.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pneumoscan.web import audit
from pneumoscan.web.models import Result, Review, utc_now
from pneumoscan.web.storage import Store


def delete_result(session: Session, store: Store, row: Result, action: str = audit.DELETE) -> list[str]:
    """Deletes one result in `session`; returns the file names to remove once it is committed."""
    files = [row.image_path, row.heatmap_path]
    audit.add(session, action, target_id=row.id)
    store.delete(files, session)
    session.execute(delete(Review).where(Review.prediction_id == row.id))
    session.delete(row)
    session.flush()
    return files


def purge(session: Session, store: Store, retention_days: int, batch: int = 200) -> tuple[int, list[str]]:
    """Deletes every result created before the retention period; returns how many, and the file
    names to remove once the deletion is committed."""
    before = utc_now() - timedelta(days=retention_days)
    removed, files = 0, []
    while rows := session.scalars(select(Result).where(Result.created_at < before).limit(batch)).all():
        for row in rows:
            files += delete_result(session, store, row, audit.PURGE)
        removed += len(rows)
    return removed, files
