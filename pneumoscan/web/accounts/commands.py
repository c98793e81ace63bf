"""`flask --app app users ...`: accounts and API tokens for the first admin and for scripts."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from pneumoscan.web import audit, db
from pneumoscan.web.accounts import rules, tokens
from pneumoscan.web.models import ROLES, User

users = AppGroup("users", help="Manage clinician and admin accounts.")


def _read_password() -> str:
    """From stdin when piped (scripts), else prompted twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _user(email: str) -> User:
    user = rules.find(db.session(), email)
    if user is None:
        raise click.ClickException(f"no account for {email}")
    return user


@users.command("create")
@click.argument("email")
@click.option("--name", required=True, help="Name shown beside the person's uploads.")
@click.option("--role", type=click.Choice(ROLES), default="clinician", show_default=True)
def create(email: str, name: str, role: str) -> None:
    """Create an account; the password is read from stdin when piped, else prompted."""
    database = db.session()
    try:
        user = rules.create(database, email, name, role, _read_password())
    except rules.AccountError as error:
        raise click.ClickException(str(error)) from error
    audit.add(database, audit.ACCOUNT_CREATE, target_id=user.id, detail=f"{user.email} as {role} (cli)")
    database.commit()
    click.echo(f"created {user.email} ({user.role})")


@users.command("list")
def list_users() -> None:
    """Every account: email, role, active, name, last sign-in."""
    for user in db.session().scalars(select(User).order_by(User.email)):
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_login_at else "never"
        state = "active" if user.active else "inactive"
        click.echo(f"{user.email}\t{user.role}\t{state}\t{user.display_name}\t{last}")


@users.command("deactivate")
@click.argument("email")
def deactivate(email: str) -> None:
    """Deactivate an account and end its sessions."""
    database = db.session()
    user = _user(email)
    try:
        rules.set_active(database, user, False)
    except rules.AccountError as error:
        raise click.ClickException(str(error)) from error
    audit.add(database, audit.ACCOUNT_ACTIVE, target_id=user.id, detail="deactivated (cli)")
    database.commit()
    click.echo(f"deactivated {user.email}")


@users.command("token")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="Label shown on the account page.")
def token(email: str, name: str) -> None:
    """Print a new API token for the account (shown once; stored hashed)."""
    database = db.session()
    user = _user(email)
    if not user.active:
        raise click.ClickException(f"{user.email} is deactivated")
    row, secret = tokens.issue(database, user, name)
    audit.add(database, audit.TOKEN_CREATE, target_id=row.id, detail=f"{row.name} (cli)", user=user)
    database.commit()
    click.echo(secret)


def init_app(app: Flask) -> None:
    app.cli.add_command(users)
