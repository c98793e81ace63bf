"""Admin pages: managing accounts and reading the audit trail."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from pneumoscan.web import audit, db
from pneumoscan.web.accounts import rules
from pneumoscan.web.accounts.forms import NewUserForm, ResetPasswordForm, RoleForm
from pneumoscan.web.accounts.guard import require_admin
from pneumoscan.web.forms import ConfirmForm
from pneumoscan.web.models import User
from pneumoscan.web.queryargs import MAX_QUERY_INT, int_arg, optional_int_arg, page_count

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_admin)


def _users_page(form: NewUserForm, status: int = 200):
    users = db.session().scalars(select(User).order_by(User.email)).all()
    return render_template(
        "admin_users.html",
        form=form,
        users=users,
        role_form=RoleForm(formdata=None),
        reset_form=ResetPasswordForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None),
    ), status


@bp.route("/users", methods=["GET", "POST"])
def users():
    form = NewUserForm()
    if request.method == "GET":
        return _users_page(form)
    if not form.validate():
        return _users_page(form, 400)
    database = db.session()
    try:
        user = rules.create(
            database, form.email.data, form.display_name.data, form.role.data, form.password.data
        )
    except rules.AccountError as error:
        form.email.errors.append(str(error))
        return _users_page(form, 400)
    audit.add(database, audit.ACCOUNT_CREATE, target_id=user.id, detail=f"{user.email} as {user.role}")
    database.commit()
    flash(f"created {user.email} ({user.role})")
    return redirect(url_for("admin.users"), code=303)


# Each change an admin can make to an account: its form, what it does, its audit action and
# what the flash message and the audit event say.
CHANGES = {
    "role": (
        RoleForm,
        lambda database, user, form: rules.set_role(database, user, form.role.data),
        audit.ACCOUNT_ROLE,
        "role set to {user.role}",
    ),
    "deactivate": (
        ConfirmForm,
        lambda database, user, _form: rules.set_active(database, user, False),
        audit.ACCOUNT_ACTIVE,
        "deactivated",
    ),
    "activate": (
        ConfirmForm,
        lambda database, user, _form: rules.set_active(database, user, True),
        audit.ACCOUNT_ACTIVE,
        "activated",
    ),
    "password": (
        ResetPasswordForm,
        lambda database, user, form: rules.reset_password(database, user, form.password.data),
        audit.ACCOUNT_PASSWORD,
        "password reset",
    ),
}


@bp.post("/users/<int:user_id>/<any(role, deactivate, activate, password):change>")
def change_user(user_id: int, change: str):
    """Applies one change to one account with its audit event, then returns to the list."""
    form_class, apply, action, detail = CHANGES[change]
    database = db.session()
    user = database.get(User, user_id)
    if user is None:
        abort(404, "no such account")
    form = form_class()
    if not form.validate_on_submit():
        abort(400, "; ".join(message for messages in form.errors.values() for message in messages))
    try:
        apply(database, user, form)
    except rules.AccountError as error:
        abort(409, str(error))
    said = detail.format(user=user)
    audit.add(database, action, target_id=user.id, detail=said)
    database.commit()
    flash(f"{user.email}: {said}")
    return redirect(url_for("admin.users"), code=303)


@bp.get("/audit")
def audit_trail():
    per_page = current_app.config["HISTORY_PER_PAGE"]
    page = int_arg("page", 1, 1, MAX_QUERY_INT // per_page)
    user_id = optional_int_arg("user", 1)
    action = request.args.get("action", "")
    action = action if action in audit.ACTIONS else ""
    total, events = audit.page(db.session(), per_page, (page - 1) * per_page, user_id, action or None)
    users = db.session().scalars(select(User).order_by(User.email)).all()
    return render_template(
        "admin_audit.html",
        events=events,
        users=users,
        actions=audit.ACTIONS,
        user_id=user_id,
        action=action,
        page=page,
        pages=page_count(total, per_page),
        total=total,
    )
