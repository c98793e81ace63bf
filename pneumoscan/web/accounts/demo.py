"""Whether the app runs open, without accounts: only while none exists and OPEN_DEMO asks for it."""

from __future__ import annotations

from flask import Flask, current_app

from pneumoscan.web import db
from pneumoscan.web.accounts import rules

EXTENSION = "pneumoscan.accounts"


class AccessState:
    """Whether an account exists; once true it stays true (accounts are deactivated, never deleted)."""

    def __init__(self) -> None:
        self.accounts_exist = False


def accounts_exist() -> bool:
    state: AccessState = current_app.extensions[EXTENSION]
    if not state.accounts_exist:
        state.accounts_exist = rules.any_accounts(db.session())
    return state.accounts_exist


def known_accounts_exist() -> bool:
    """What the guard last found, without asking the database (safe in error pages and hooks)."""
    return current_app.extensions[EXTENSION].accounts_exist


def open_demo(ask_database: bool = False) -> bool:
    """True while the app runs without accounts because OPEN_DEMO asked for it.

    Without `ask_database` it trusts what the guard last found, so error pages can call it.
    """
    if not current_app.config["OPEN_DEMO"]:
        return False
    return not (accounts_exist() if ask_database else known_accounts_exist())


def mark_accounts_exist() -> None:
    """A signed-in user proves an account exists; remember it without asking the database."""
    current_app.extensions[EXTENSION].accounts_exist = True


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = AccessState()

    @app.context_processor
    def _access_flags() -> dict:
        return {"open_demo": open_demo()}
