"""Accounts: creating them, passwords, roles, deactivation, and ending their sessions.

Shared by the admin pages, the first-run page and the `flask users` commands, so each rule
(unique email, known role, at least one active admin) is enforced in one place.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from pneumoscan.errors import Refused
from pneumoscan.web.accounts import passwords, tokens
from pneumoscan.web.models import ROLES, User, UserSession

# Checked against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = passwords.hashed("not a password of anyone")


class AccountError(Refused):
    """A request to change accounts that breaks a rule; the message is shown to the admin."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def any_accounts(session: Session) -> bool:
    return bool(session.scalar(select(exists().select_from(User))))


def find(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def check_password(user: User | None, password: str) -> bool:
    """True only for an active user with this password; as slow for a missing user as for a real one."""
    if user is None:
        passwords.matches(_DUMMY_HASH, password)
        return False
    return passwords.matches(user.password_hash, password) and user.active


def _valid_password(password: str, email: str, name: str) -> str:
    problem = passwords.problem(password, email, name)
    if problem is not None:
        raise AccountError(problem)
    return password


def _valid_email(email: str) -> str:
    """Syntax only, no DNS look-up: sites use internal domains."""
    try:
        validate_email(email, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as error:
        raise AccountError(f"enter a valid email address: {error}") from None
    return email


def _valid_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    return role


def create(session: Session, email: str, display_name: str, role: str, password: str) -> User:
    """Adds the user to the session (the caller commits, with its audit event)."""
    email = _valid_email(normalise_email(email))
    if len(email) > 254:
        raise AccountError("enter an email address")
    if not display_name.strip():
        raise AccountError("enter a display name")
    if find(session, email) is not None:
        raise AccountError(f"an account for {email} already exists")
    user = User(
        email=email,
        display_name=display_name.strip()[:120],
        role=_valid_role(role),
        active=True,
        password_hash=passwords.hashed(_valid_password(password, email, display_name)),
    )
    session.add(user)
    session.flush()
    return user


def end_sessions(session: Session, user: User) -> None:
    """Every browser signed in as this user is signed out at its next request."""
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = passwords.hashed(_valid_password(password, user.email, user.display_name))
    end_sessions(session, user)


def reset_password(session: Session, user: User, password: str) -> None:
    """An admin's reset: a new password, every session ended and every API token revoked."""
    set_password(session, user, password)
    tokens.revoke_all(session, user)


def _other_active_admins(session: Session, user: User) -> int:
    """Counted with the active admins' rows locked (PostgreSQL), so two admins demoting each other
    at once are taken in turn and the second sees the first's change."""
    admins = session.scalars(
        select(User.id).where(User.role == "admin", User.active.is_(True)).with_for_update()
    ).all()
    return sum(1 for admin_id in admins if admin_id != user.id)


def set_role(session: Session, user: User, role: str) -> None:
    role = _valid_role(role)
    if user.is_admin and role != "admin" and not _other_active_admins(session, user):
        raise AccountError("the last active admin cannot stop being an admin")
    user.role = role


def set_active(session: Session, user: User, active: bool) -> None:
    if not active and user.is_admin and not _other_active_admins(session, user):
        raise AccountError("the last active admin cannot be deactivated")
    user.active = active
    if not active:
        end_sessions(session, user)
