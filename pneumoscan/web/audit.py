"""The audit trail: one append-only row per action, naming who, when, from where and on what."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pneumoscan.web.models import AuditEvent, User

SIGN_IN = "sign-in"
SIGN_IN_FAILED = "sign-in-failed"
SIGN_OUT = "sign-out"
UPLOAD = "upload"
VIEW = "view"
LIST = "list"
READ_FILE = "read-file"
REVIEW = "review"
EXPORT = "export"
IMPORT = "import"
DELETE = "delete"
PURGE = "purge"
ACCOUNT_CREATE = "account-create"
ACCOUNT_ROLE = "account-role"
ACCOUNT_ACTIVE = "account-active"
ACCOUNT_PASSWORD = "account-password"
TOKEN_CREATE = "token-create"
TOKEN_REVOKE = "token-revoke"
SITE_THRESHOLD = "site-threshold"
ACTIONS = (
    SIGN_IN,
    SIGN_IN_FAILED,
    SIGN_OUT,
    UPLOAD,
    VIEW,
    LIST,
    READ_FILE,
    REVIEW,
    EXPORT,
    IMPORT,
    DELETE,
    PURGE,
    ACCOUNT_CREATE,
    ACCOUNT_ROLE,
    ACCOUNT_ACTIVE,
    ACCOUNT_PASSWORD,
    TOKEN_CREATE,
    TOKEN_REVOKE,
    SITE_THRESHOLD,
)


def _acting_user() -> User | None:
    if has_request_context() and current_user.is_authenticated:
        return current_user._get_current_object()
    return None


def add(
    session: Session,
    action: str,
    target_id: str | int | None = None,
    detail: str | None = None,
    user: User | None = None,
) -> AuditEvent:
    """Adds an event to the session, to be committed with the change it describes.

    The user defaults to whoever is signed in; commands run outside a request record none.
    """
    actor = user or _acting_user()
    event = AuditEvent(
        action=action,
        user_id=actor.id if actor else None,
        target_id=str(target_id) if target_id is not None else None,
        client_address=(request.remote_addr or None) if has_request_context() else None,
        detail=detail[:255] if detail else None,
    )
    session.add(event)
    return event


def page(
    session: Session, limit: int, offset: int, user_id: int | None = None, action: str | None = None
) -> tuple[int, list[AuditEvent]]:
    """The number of matching events and one page of them, newest first."""
    conditions = []
    if user_id is not None:
        conditions.append(AuditEvent.user_id == user_id)
    if action:
        conditions.append(AuditEvent.action == action)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    rows = session.scalars(
        select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return total, list(rows)
