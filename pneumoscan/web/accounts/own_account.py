"""The signed-in user's own page: password and personal API tokens."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from pneumoscan.web import audit, db
from pneumoscan.web.accounts import rules, sessions, tokens
from pneumoscan.web.accounts.forms import ChangePasswordForm, TokenForm
from pneumoscan.web.forms import ConfirmForm

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.before_request
def _signed_in_only() -> None:
    """An open demo has nobody signed in, so there is no account to show."""
    if not current_user.is_authenticated:
        abort(401, "sign in with an account to see this page")


def _page(status: int = 200, new_token: str | None = None, **forms):
    forms.setdefault("password_form", ChangePasswordForm(formdata=None))
    forms.setdefault("token_form", TokenForm(formdata=None))
    return render_template(
        "account.html",
        tokens=tokens.owned_by(db.session(), current_user),
        confirm_form=ConfirmForm(formdata=None),
        new_token=new_token,
        **forms,
    ), status


@bp.get("")
def show():
    return _page()


@bp.post("/password")
def change_password():
    """Ends every session of this user, then signs this browser in again."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _page(400, password_form=form)
    if not rules.check_password(current_user, form.current.data):
        form.current.errors.append("wrong password")
        return _page(400, password_form=form)
    database = db.session()
    user = current_user._get_current_object()
    rules.set_password(database, user, form.password.data)
    audit.add(database, audit.ACCOUNT_PASSWORD, target_id=user.id, detail="own password changed")
    sessions.sign_in(user)
    database.commit()
    flash("password changed; other browsers were signed out")
    return redirect(url_for("account.show"), code=303)


@bp.post("/tokens")
def create_token():
    """The token is shown on this response only; it is stored hashed."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(400, token_form=form)
    database = db.session()
    row, token = tokens.issue(database, current_user, form.name.data)
    audit.add(database, audit.TOKEN_CREATE, target_id=row.id, detail=row.name)
    database.commit()
    return _page(201, new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400, "the form expired; reload the page and try again")
    database = db.session()
    row = tokens.revoke(database, current_user, token_id)
    if row is None:
        abort(404, "no such token")
    audit.add(database, audit.TOKEN_REVOKE, target_id=row.id, detail=row.name)
    database.commit()
    flash(f"token {row.name} revoked")
    return redirect(url_for("account.show"), code=303)
