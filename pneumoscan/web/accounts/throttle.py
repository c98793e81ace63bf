"""Failed sign-ins slow further attempts, per account and per client address.

Its own bucket, apart from the upload rate limit, so uploads never lock anyone out and a
clinic behind one address is only locked after many more failures than one account is. The
counts live in the database so every worker and instance shares them. An unknown email has an
account bucket like a real one, so the answers do not tell whether an email exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from pneumoscan.web.models import LoginThrottle, utc_now

FREE_FAILURES = {"account": 5, "address": 20}
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(hours=1)
# Failures older than this are forgotten.
MEMORY = timedelta(hours=24)


def buckets(email: str, address: str | None) -> list[str]:
    return [f"account:{email.strip().lower()}", f"address:{address or 'unknown'}"]


def _limit(bucket: str) -> int:
    return FREE_FAILURES[bucket.split(":", 1)[0]]


def locked_for(session: Session, names: list[str], now: datetime | None = None) -> float:
    """Seconds until every bucket is open again (0 when none is locked)."""
    now = now or utc_now()
    wait = 0.0
    for name in names:
        row = session.get(LoginThrottle, name)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = max(wait, (row.locked_until - now).total_seconds())
    return wait


def record_failure(session: Session, names: list[str], now: datetime | None = None) -> None:
    """Counts a failure in each bucket; past its free failures a bucket locks, twice as long each time."""
    now = now or utc_now()
    for name in names:
        row = session.get(LoginThrottle, name)
        if row is None:
            row = LoginThrottle(bucket=name, failures=0)
            session.add(row)
        elif now - row.last_failure_at > MEMORY:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        over = row.failures - _limit(name)
        if over >= 0:
            row.locked_until = now + min(FIRST_LOCK * 2 ** min(over, 16), LONGEST_LOCK)


def record_success(session: Session, names: list[str]) -> None:
    """A right password clears its account's bucket; the address's failures stay counted."""
    row = session.get(LoginThrottle, names[0])
    if row is not None:
        session.delete(row)
