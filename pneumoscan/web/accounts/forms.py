"""The sign-in, setup, account and admin forms (field names are part of the pages' contract)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from pneumoscan.web.accounts.passwords import MIN_LENGTH as MIN_PASSWORD_LENGTH
from pneumoscan.web.models import ROLES

ROLE_CHOICES = [SelectChoice(role) for role in ROLES]


def _at_most(characters: int) -> Length:
    """A length limit worded as the app words its errors."""
    return Length(max=characters, message=f"use at most {characters} characters")


def _new_password(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[
            InputRequired("enter a password"),
            Length(min=MIN_PASSWORD_LENGTH, message=f"use at least {MIN_PASSWORD_LENGTH} characters"),
        ],
        description=f"At least {MIN_PASSWORD_LENGTH} characters.",
        render_kw={"autocomplete": "new-password", "minlength": MIN_PASSWORD_LENGTH},
    )


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired("enter your email"), _at_most(254)])
    password = PasswordField("Password", validators=[InputRequired("enter your password")])


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired("enter an email address"), _at_most(254)])
    display_name = StringField("Name", validators=[InputRequired("enter a name"), _at_most(120)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="clinician")
    password = _new_password()


class SetupForm(NewUserForm):
    """The first admin, allowed only with the setup code from the server's log."""

    role = None
    code = StringField("Setup code (from the server log)", validators=[InputRequired("enter the setup code")])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ResetPasswordForm(FlaskForm):
    password = _new_password("New password")


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired("enter your current password")])
    password = _new_password("New password")


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[InputRequired("name the token"), Length(max=100)])
