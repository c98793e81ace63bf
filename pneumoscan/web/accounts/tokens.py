"""Personal API tokens: shown once when made, stored as a SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pneumoscan.web.models import ApiToken, User, utc_now

PREFIX = "psk_"
# last_used_at is written at most this often per token, not on every call.
USE_RECORD_INTERVAL = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the token itself, which is never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id, name=name.strip()[:100] or "token", token_hash=_digest(token), prefix=token[:10]
    )
    session.add(row)
    session.flush()
    return row, token


def owned_by(session: Session, user: User) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    return list(session.scalars(query))


def revoke(session: Session, user: User, token_id: int) -> ApiToken | None:
    """Revokes one of the user's own tokens; None if it is not theirs."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        return None
    if row.revoked_at is None:
        row.revoked_at = utc_now()
    return row


def revoke_all(session: Session, user: User) -> None:
    """Revokes every live token of the user (an admin's password reset)."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )


def user_for(session: Session, token: str) -> User | None:
    """The active owner of a live token, or None; marks the token used (flushed: the caller commits)."""
    if not token.startswith(PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    now = utc_now()
    if row.last_used_at is None or now - row.last_used_at > USE_RECORD_INTERVAL:
        row.last_used_at = now
        session.flush()
    return row.user
