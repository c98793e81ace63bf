"""The PneumoScan web app: upload form, results, history, accounts, JSON API (application factory)."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import Flask
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from pneumoscan.model_card import CARD_FILE
from pneumoscan.web import db, storage
from pneumoscan.web.accounts import admin, first_run, guard, own_account, signin
from pneumoscan.web.accounts import commands as account_commands
from pneumoscan.web.api import docs as api_docs
from pneumoscan.web.api import routes as api
from pneumoscan.web.config import INSTANCE_PATH, from_environment
from pneumoscan.web.monitoring import dashboard, health, threshold_page
from pneumoscan.web.results import commands as result_commands
from pneumoscan.web.results import files, pages, sweeper
from pneumoscan.web.server import body_deadline, error_handlers, log_format, rate_limits, security, text_input

csrf = CSRFProtect()


def create_app(test_config: dict | None = None) -> Flask:
    """Build an app from the environment (or `test_config`).

    Fails at once if MODEL_DIR holds no model. The model itself is loaded on first use, once
    per process (pneumoscan.web.modelcache), so building an app is cheap.
    """
    app = Flask(__name__, instance_path=str(INSTANCE_PATH))
    app.config.from_mapping(from_environment(Path(app.instance_path), test_config))
    model_card = Path(app.config["MODEL_DIR"]) / CARD_FILE
    if not model_card.is_file():
        raise RuntimeError(f"no model found: {model_card} is missing; set MODEL_DIR or add the model")
    log_format.configure(app.config["LOG_FORMAT"])
    proxies = app.config["TRUST_PROXY"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies)

    security.init_app(app)
    text_input.init_app(app)
    csrf.init_app(app)
    db.init_app(app)
    guard.init_app(app)
    rate_limits.init_app(app)
    storage.init_app(app)
    sweeper.init_app(app)
    body_deadline.init_app(app)

    app.register_blueprint(signin.bp)
    app.register_blueprint(own_account.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api_docs.bp)
    app.register_blueprint(files.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(threshold_page.bp)
    app.register_blueprint(health.bp)
    csrf.exempt(api.bp)
    error_handlers.init_app(app)
    result_commands.init_app(app)
    account_commands.init_app(app)
    if os.environ.get("ADMIN_PASSWORD_HASH"):
        app.logger.warning("ADMIN_PASSWORD_HASH is retired and ignored; create accounts instead (README)")
    if click.get_current_context(silent=True) is None:
        try:
            first_run.announce_setup_code(app)
        except SQLAlchemyError:
            app.logger.warning("database unavailable at start; cannot tell whether an account exists")
    return app
