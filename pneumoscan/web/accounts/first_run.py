"""The first admin: made on /setup with a code printed to the log, while no account exists."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask

from pneumoscan.web.accounts.demo import accounts_exist


def setup_code(secret_key: str) -> str:
    """The first-run code: derived from SECRET_KEY, so every worker prints and accepts the same one."""
    digest = hmac.new(secret_key.encode(), b"pneumoscan first-run setup", hashlib.sha256).hexdigest()
    return "-".join(digest[i : i + 4] for i in range(0, 12, 4))


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
