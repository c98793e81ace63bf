"""The first admin: made on /setup with a code printed to the log, while no account exists."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask
from sqlalchemy.orm import Session

from pneumoscan.web.accounts.demo import accounts_exist
from pneumoscan.web.models import LoginThrottle

# A row whose key only one transaction can insert: concurrent right codes make one admin.
DONE_MARKER = "first-run:done"


def setup_code(secret_key: str) -> str:
    """The first-run code: derived from SECRET_KEY, so every worker prints and accepts the same one."""
    digest = hmac.new(secret_key.encode(), b"pneumoscan first-run setup", hashlib.sha256).hexdigest()
    return "-".join(digest[i : i + 4] for i in range(0, 12, 4))


def mark_done(session: Session) -> None:
    """Adds the marker beside the first admin; a second concurrent setup fails on its key at commit."""
    session.add(LoginThrottle(bucket=DONE_MARKER, failures=0))


def announce_setup_code(app: Flask) -> None:
    """With no account yet and no OPEN_DEMO, log where and with what code to make the first admin."""
    with app.app_context():
        if app.config["OPEN_DEMO"] or accounts_exist():
            return
    app.logger.warning(
        "no account exists yet: open /setup and enter the setup code %s to create the first admin "
        "(or run `flask --app app users create EMAIL --name NAME --role admin`)",
        setup_code(app.config["SECRET_KEY"]),
    )
