"""A whole site to a zip file and back: results with their files, reviews with every version, site
thresholds, refusal counts and the audit trail (accounts with their password hashes only when
asked), one JSON array per table beside `files/`.

Import checks the whole archive first (pneumoscan.web.results.archive_schema), then writes it in
one transaction: a failed import leaves the database and the store as they were. File names are
made by the store from each result's id, never taken from the archive.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pneumoscan.web import audit
from pneumoscan.web.models import AuditEvent, RefusalCount, Result, Review, SiteThreshold, User
from pneumoscan.web.results.archive_files import (
    FILE_LIMIT,
    FILES_FOLDER,
    BadArchive,
    check_entries,
    entry_info,
    read_file,
    records,
)
from pneumoscan.web.results.archive_schema import (
    PEOPLE,
    TABLES,
    AccountRecord,
    AuditRecord,
    Record,
    RefusalRecord,
    ResultRecord,
    ReviewRecord,
    SiteThresholdRecord,
)
from pneumoscan.web.storage import Store
from pneumoscan.web.store_names import stored_names

ACCOUNTS = "accounts.json"
ROWS_ENTRY = "predictions.json"
FLUSH_EVERY = 50
_UPSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_KEPT_IDS = (SiteThreshold, Review)


def _email(user: User | None) -> str | None:
    return user.email if user is not None else None


def _record(kind: type[Record], row: object, **people: str | None) -> dict:
    """The row as its archive record: every field the record has and the table has too."""
    values = {name: getattr(row, name, None) for name in kind.model_fields if name not in people}
    return kind.model_validate(values | people).model_dump(mode="json")


def _exported(session: Session, include_accounts: bool) -> dict[str, Iterable[dict]]:
    def rows(model, *order):
        return session.scalars(select(model).order_by(*order).execution_options(yield_per=500))

    tables = {
        "site_thresholds.json": (
            _record(SiteThresholdRecord, row, set_by=_email(row.set_by))
            for row in rows(SiteThreshold, SiteThreshold.id)
        ),
        ROWS_ENTRY: (
            _record(ResultRecord, row, uploaded_by=_email(row.uploaded_by))
            for row in rows(Result, Result.created_at, Result.id)
        ),
        "reviews.json": (
            _record(ReviewRecord, row, reviewer=_email(row.reviewer)) for row in rows(Review, Review.id)
        ),
        "refusal_counts.json": (
            _record(RefusalRecord, row) for row in rows(RefusalCount, RefusalCount.day, RefusalCount.reason)
        ),
        "audit_events.json": (
            _record(AuditRecord, row, user=_email(row.user)) for row in rows(AuditEvent, AuditEvent.id)
        ),
    }
    if include_accounts:
        tables[ACCOUNTS] = (_record(AccountRecord, row) for row in rows(User, User.id))
    return tables


def _write_array(bundle: zipfile.ZipFile, name: str, items: Iterable[dict]) -> int:
    count = 0
    with bundle.open(name, "w", force_zip64=True) as entry:
        entry.write(b"[")
        for count, item in enumerate(items, 1):
            entry.write((b",\n" if count > 1 else b"\n") + json.dumps(item).encode())
        entry.write(b"\n]\n")
    return count


def export_site(session: Session, store: Store, archive: Path, include_accounts: bool = False) -> int:
    """Writes the archive, readable by its owner only, whole or not at all; returns how many
    results it holds. The export's audit event is added to `session` for the caller to commit."""
    handle, partial = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as bundle:
            for row in session.scalars(select(Result).order_by(Result.id).execution_options(yield_per=100)):
                for name in (row.image_path, row.heatmap_path):
                    data = store.read(name, session)
                    if data is None:
                        raise BadArchive(f"{name} is missing from the store")
                    bundle.writestr(FILES_FOLDER + name, data)
            counts = {
                name: _write_array(bundle, name, items)
                for name, items in _exported(session, include_accounts).items()
            }
        os.chmod(partial, 0o600)
        os.replace(partial, archive)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    detail = f"{counts[ROWS_ENTRY]} result(s) to {archive.name}"
    audit.add(session, audit.EXPORT, detail=detail + (" with accounts" if include_accounts else ""))
    return counts[ROWS_ENTRY]


def _row(model: type, record: Record, **overrides: object) -> object:
    """A table row from a checked record: the record's fields the table has, then `overrides`."""
    columns = model.__table__.columns.keys()
    return model(**{k: v for k, v in record.model_dump().items() if k in columns} | overrides)


def _no_lost_fields(record: Record, model: type, where: str) -> None:
    """Refuses a value for a column this database does not have yet, rather than dropping it."""
    columns = model.__table__.columns.keys()
    for name, value in record:
        if value is not None and name not in columns and name not in PEOPLE:
            raise BadArchive(f"{where}: {name}: this database has no such column; upgrade it first")


def _unique(seen: set, key: object, where: str) -> None:
    if key in seen:
        raise BadArchive(f"{where}: {key} appears twice")
    seen.add(key)


def _numbered(items: Iterator[Record], name: str) -> Iterator[tuple[str, Record]]:
    for number, item in enumerate(items, 1):
        yield f"{name} row {number}", item


def check_archive(bundle: zipfile.ZipFile) -> None:
    """Reads every record and every file's header once, so that a bad row is found (and named)
    before anything is written."""
    check_entries(bundle)
    thresholds: set[int] = set()
    for where, row in _numbered(
        records(bundle, "site_thresholds.json", SiteThresholdRecord), "site_thresholds.json"
    ):
        _unique(thresholds, row.id, where)
    results: set[str] = set()
    for where, row in _numbered(records(bundle, ROWS_ENTRY, ResultRecord, required=True), ROWS_ENTRY):
        _unique(results, row.id, where)
        _no_lost_fields(row, Result, where)
        if row.site_threshold_id is not None and row.site_threshold_id not in thresholds:
            raise BadArchive(
                f"{where}: site_threshold_id {row.site_threshold_id} is not in site_thresholds.json"
            )
        for name in stored_names(row.id, row.image_suffix):
            entry_info(bundle, FILES_FOLDER + name, FILE_LIMIT)
    review_ids: set[int] = set()
    versions: set[tuple[str, int]] = set()
    for where, review in _numbered(records(bundle, "reviews.json", ReviewRecord), "reviews.json"):
        _unique(review_ids, review.id, where)
        _unique(versions, (review.prediction_id, review.version), where)
        _no_lost_fields(review, Review, where)
        if review.prediction_id not in results:
            raise BadArchive(f"{where}: prediction_id {review.prediction_id} is not in {ROWS_ENTRY}")
    for name in (ACCOUNTS, "refusal_counts.json", "audit_events.json"):
        for _ in records(bundle, name, TABLES[name]):
            pass


def _advance_sequences(session: Session) -> None:
    """PostgreSQL's id sequences past the ids kept from the archive, so the next row gets a new one."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in _KEPT_IDS:
        table = model.__tablename__
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false)"
                f" FROM {table}"
            )
        )


def _add_refusal_counts(session: Session, bundle: zipfile.ZipFile) -> None:
    """Added onto any counts the database has for the same day and reason."""
    for row in records(bundle, "refusal_counts.json", RefusalRecord):
        insert = _UPSERTS[session.get_bind().dialect.name](RefusalCount).values(**row.model_dump())
        session.execute(
            insert.on_conflict_do_update(
                index_elements=[RefusalCount.day, RefusalCount.reason],
                set_={"count": RefusalCount.count + insert.excluded.count},
            )
        )


def import_site(session: Session, store: Store, bundle: zipfile.ZipFile) -> int:
    """Restores an archive into a database without results or site thresholds, in one transaction
    that this function commits (the files the store placed go again if it fails); returns how
    many results. Raises BadArchive, naming the entry, row and field, before writing anything."""
    if session.scalar(select(func.count()).select_from(Result)) or session.scalar(
        select(func.count()).select_from(SiteThreshold)
    ):
        raise BadArchive("the database already holds results; import-data needs an empty one")
    check_archive(bundle)
    placed: list[str] = []
    try:
        known = set(session.scalars(select(User.email)))
        session.add_all(
            _row(User, row) for row in records(bundle, ACCOUNTS, AccountRecord) if row.email not in known
        )
        session.flush()
        people = dict(session.execute(select(User.email, User.id)).all())
        for row in records(bundle, "site_thresholds.json", SiteThresholdRecord):
            session.add(_row(SiteThreshold, row, set_by_id=people.get(row.set_by)))
        session.flush()
        count = 0
        for count, row in enumerate(records(bundle, ROWS_ENTRY, ResultRecord, required=True), 1):
            image, heatmap = stored_names(row.id, row.image_suffix)
            session.add(
                _row(
                    Result,
                    row,
                    uploaded_by_id=people.get(row.uploaded_by),
                    image_path=image,
                    heatmap_path=heatmap,
                )
            )
            placed += store.put(
                {image: read_file(bundle, image), heatmap: read_file(bundle, heatmap)}, session
            )
            if count % FLUSH_EVERY == 0:
                session.flush()
                session.expunge_all()
        for row in records(bundle, "reviews.json", ReviewRecord):
            session.add(_row(Review, row, reviewer_id=people.get(row.reviewer)))
        _add_refusal_counts(session, bundle)
        for row in records(bundle, "audit_events.json", AuditRecord):
            session.add(_row(AuditEvent, row, user_id=people.get(row.user)))
        audit.add(session, audit.IMPORT, detail=f"{count} result(s)")
        session.flush()
        _advance_sequences(session)
        session.commit()
    except BaseException:
        session.rollback()
        store.remove(placed)
        raise
    return count
