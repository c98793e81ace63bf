"""Failed sign-ins slow further attempts, per account and per client address.

Its own bucket, apart from the upload rate limit, so uploads never lock anyone out and a
clinic behind one address is only locked after many more failures than one account is. The
counts live in the database so every worker and instance shares them. An unknown email has an
account bucket like a real one, so the answers do not tell whether an email exists.

An attempt is counted before its password is checked, by one insert-or-update per bucket that
also refuses it while the bucket is locked (`claim`), committed at once: concurrent attempts
cannot lose a count, and the attempt that reaches the limit locks the bucket for the ones behind
it, so at most the free failures are ever checked. A right password then takes its count back
(`succeeded`); nothing is ever deleted, so no two writers race on a vanishing row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, case, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pneumoscan.web.models import LoginThrottle, UTCDateTime, utc_now

FREE_FAILURES = {"account": 5, "address": 20, "setup": 5}
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(hours=1)
# Failures older than this are forgotten.
MEMORY = timedelta(hours=24)
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def buckets(email: str, address: str | None) -> list[str]:
    return [f"account:{email.strip().lower()}", f"address:{address or 'unknown'}"]


def setup_buckets(address: str | None) -> list[str]:
    """The first-run page counts wrong codes per address, so no one can lock the operator out."""
    return [f"setup:{address or 'unknown'}"]


def _limit(bucket: str) -> int:
    return FREE_FAILURES[bucket.split(":", 1)[0]]


def _lock(over: int) -> timedelta:
    return min(FIRST_LOCK * 2 ** min(over, 16), LONGEST_LOCK)


@dataclass
class Claim:
    """One attempt: each bucket's count should it fail, or the wait when a bucket was locked."""

    counts: dict[str, int] = field(default_factory=dict)
    wait: float = 0.0


def _claim_one(connection: Connection, name: str, now: datetime) -> int | None:
    """Counts the attempt in one statement unless the bucket is locked; its new count, or None."""
    at = literal(now, UTCDateTime())
    count = case(
        (LoginThrottle.last_failure_at < literal(now - MEMORY, UTCDateTime()), 1),
        else_=LoginThrottle.failures + 1,
    )
    insert = _INSERTS[connection.dialect.name](LoginThrottle).values(
        bucket=name, failures=1, last_failure_at=now, locked_until=None
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[LoginThrottle.bucket],
        set_={
            "failures": count,
            "last_failure_at": at,
            "locked_until": case(
                (count >= _limit(name), literal(now + FIRST_LOCK, UTCDateTime())), else_=None
            ),
        },
        where=or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= at),
    ).returning(LoginThrottle.failures)
    return connection.execute(upsert).scalar()


def claim(engine: Engine, names: list[str], now: datetime | None = None) -> Claim:
    """Counts an attempt in every bucket before its password is checked, in a transaction of its
    own; if any bucket is locked, nothing is counted and the Claim says how long to wait."""
    now = now or utc_now()
    attempt = Claim()
    with engine.connect() as connection:
        for name in names:
            count = _claim_one(connection, name, now)
            if count is None:
                until = connection.scalar(
                    select(LoginThrottle.locked_until).where(LoginThrottle.bucket == name)
                )
                connection.rollback()
                return Claim(wait=max((until - now).total_seconds(), 1.0) if until else 1.0)
            attempt.counts[name] = count
        connection.commit()
    return attempt


def failed(engine: Engine, attempt: Claim, now: datetime | None = None) -> None:
    """The claimed attempt was wrong: past its free failures a bucket locks, twice as long each time."""
    now = now or utc_now()
    with engine.begin() as connection:
        for name, count in attempt.counts.items():
            over = count - _limit(name)
            if over > 0:
                connection.execute(
                    update(LoginThrottle)
                    .where(LoginThrottle.bucket == name)
                    .values(locked_until=now + _lock(over))
                )


def succeeded(engine: Engine, attempt: Claim) -> None:
    """A right password clears its first bucket (the account's) and takes its count back from the
    others (the address's earlier failures stay counted)."""
    first, *others = attempt.counts
    with engine.begin() as connection:
        connection.execute(
            update(LoginThrottle).where(LoginThrottle.bucket == first).values(failures=0, locked_until=None)
        )
        for name in others:
            connection.execute(
                update(LoginThrottle)
                .where(LoginThrottle.bucket == name, LoginThrottle.failures > 0)
                .values(
                    failures=LoginThrottle.failures - 1,
                    locked_until=case(
                        (LoginThrottle.failures - 1 >= _limit(name), LoginThrottle.locked_until), else_=None
                    ),
                )
            )
