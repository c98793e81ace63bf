"""Flask-WTF forms: CSRF-protected, rendered by Jinja without JavaScript."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileRequired, MultipleFileField
from wtforms import (
    EmailField,
    Field,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import InputRequired, Length

from pneumoscan.formats import ACCEPTED_LABELS, FILE_PICKER_ACCEPT
from pneumoscan.web import case_reference
from pneumoscan.web.accounts import MIN_PASSWORD_LENGTH
from pneumoscan.web.models import FINDINGS, ROLES
from pneumoscan.web.reviews import MAX_NOTE_LENGTH

ROLE_CHOICES = [SelectChoice(role) for role in ROLES]


def _valid_case_reference(_form: FlaskForm, field: Field) -> None:
    try:
        field.data = case_reference.clean_case_reference(field.data)
    except case_reference.CaseReferenceInvalid as error:
        raise ValidationError(str(error)) from error


class UploadForm(FlaskForm):
    """One or several files; each file's type is decided from its content by pneumoscan.decode,
    not from its extension."""

    file = MultipleFileField(
        f"Chest X-ray ({ACCEPTED_LABELS})",
        validators=[FileRequired("choose a chest X-ray file to upload")],
        render_kw={"accept": FILE_PICKER_ACCEPT},
    )
    case_reference = StringField(
        "Case reference (optional)",
        validators=[_valid_case_reference],
        render_kw={"maxlength": case_reference.MAX_LENGTH, "autocomplete": "off"},
    )


class ReviewForm(FlaskForm):
    """A clinician's confirmed finding for a result; saving again adds a version."""

    finding = RadioField(
        "Confirmed finding",
        choices=[SelectChoice(finding) for finding in FINDINGS],
        validators=[InputRequired("choose PNEUMONIA, NORMAL or UNSURE")],
    )
    note = TextAreaField(
        "Note (optional)",
        validators=[
            Length(max=MAX_NOTE_LENGTH, message=f"the note is limited to {MAX_NOTE_LENGTH} characters")
        ],
        render_kw={"maxlength": MAX_NOTE_LENGTH, "rows": 3},
    )


def _new_password(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[InputRequired("enter a password"), Length(min=MIN_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password", "minlength": MIN_PASSWORD_LENGTH},
    )


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired("enter your email"), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired("enter your password")])


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token is sent."""


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired("enter an email address"), Length(max=254)])
    display_name = StringField("Name", validators=[InputRequired("enter a name"), Length(max=120)])
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
