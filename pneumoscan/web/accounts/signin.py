"""Signing in and out, and the first-run page that makes the first admin.

Failed sign-ins are slowed by pneumoscan.web.accounts.throttle, and sign-in posts have their own rate
limit (not the uploads'); the answer is the same whether or not the email has an account.
"""

from __future__ import annotations

import hmac
import math
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import TooManyRequests

from pneumoscan.web import audit, db
from pneumoscan.web.accounts import demo, first_run, rules, sessions, throttle
from pneumoscan.web.accounts.forms import LoginForm, SetupForm
from pneumoscan.web.forms import ConfirmForm
from pneumoscan.web.server.rate_limits import sign_in_limited

bp = Blueprint("auth", __name__)
WRONG = "wrong email or password"


def _safe_next(target: str | None) -> str:
    """Only same-site paths of printable characters, so the login page cannot be used as an open
    redirect (a browser drops tabs and line breaks, making `/\\n\\evil.example` another site)."""
    printable = target is not None and target.isprintable() and "\\" not in target
    if printable and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("pages.index")


def _claim(buckets: list[str]) -> throttle.Claim:
    """Counts the attempt before its secret is checked; refuses it while a bucket is locked."""
    attempt = throttle.claim(db.database().engine, buckets)
    if attempt.wait > 0:
        seconds = math.ceil(attempt.wait)
        raise TooManyRequests(f"too many failed sign-ins; try again in {seconds} s", retry_after=seconds)
    return attempt


@bp.route("/login", methods=["GET", "POST"])
@sign_in_limited
def login():
    if not demo.accounts_exist():
        return redirect(url_for("auth.setup" if not current_app.config["OPEN_DEMO"] else "pages.index"))
    form = LoginForm()
    if form.validate_on_submit():
        email = rules.normalise_email(form.email.data)
        attempt = _claim(throttle.buckets(email, request.remote_addr))
        database = db.session()
        user = rules.find(database, email)
        if rules.check_password(user, form.password.data):
            throttle.succeeded(db.database().engine, attempt)
            sessions.sign_in(user)
            audit.add(database, audit.SIGN_IN, target_id=user.id, user=user)
            database.commit()
            return redirect(_safe_next(request.args.get("next")), code=303)
        throttle.failed(db.database().engine, attempt)
        audit.add(database, audit.SIGN_IN_FAILED, detail=email)
        database.commit()
        form.password.errors.append(WRONG)
    return render_template("login.html", form=form), 401 if request.method == "POST" else 200


@bp.post("/logout")
def logout():
    if not ConfirmForm().validate_on_submit():
        abort(400, "the sign-out form expired; reload the page and try again")
    database = db.session()
    audit.add(database, audit.SIGN_OUT)
    sessions.sign_out()
    database.commit()
    flash("signed out")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/setup", methods=["GET", "POST"])
@sign_in_limited
def setup():
    """Creates the first admin; gone once any account exists."""
    if demo.accounts_exist():
        return redirect(url_for("auth.login"))
    form = SetupForm()
    valid = form.validate_on_submit()
    # The code is checked even when another field is wrong, so every error shows at once.
    if form.is_submitted() and form.code.data and not form.csrf_token.errors:
        attempt = _claim(throttle.setup_buckets(request.remote_addr))
        expected = first_run.setup_code(current_app.config["SECRET_KEY"])
        database = db.session()
        if not hmac.compare_digest(form.code.data.strip().lower(), expected):
            throttle.failed(db.database().engine, attempt)
            form.code.errors = [*form.code.errors, "wrong setup code; it is in the server's log"]
        else:
            throttle.succeeded(db.database().engine, attempt)
        if valid and not form.code.errors:
            try:
                user = rules.create(
                    database, form.email.data, form.display_name.data, "admin", form.password.data
                )
            except rules.AccountError as error:
                form.email.errors.append(str(error))
            else:
                first_run.mark_done(database)
                audit.add(database, audit.ACCOUNT_CREATE, target_id=user.id, detail="first admin", user=user)
                sessions.sign_in(user)
                try:
                    database.commit()
                except IntegrityError:
                    database.rollback()
                    return redirect(url_for("auth.login"))
                return redirect(url_for("pages.index"), code=303)
    return render_template("setup.html", form=form), 400 if form.errors else 200
