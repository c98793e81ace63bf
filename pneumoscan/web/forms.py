"""Flask-WTF forms: CSRF-protected, rendered by Jinja without JavaScript."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import PasswordField
from wtforms.validators import InputRequired

from pneumoscan.formats import ACCEPTED_LABELS, FILE_PICKER_ACCEPT


class UploadForm(FlaskForm):
    """The file's type is decided from its content by pneumoscan.decode, not from its extension."""

    file = FileField(
        f"Chest X-ray ({ACCEPTED_LABELS})",
        validators=[FileRequired("choose a chest X-ray file to upload")],
        render_kw={"accept": FILE_PICKER_ACCEPT},
    )


class LoginForm(FlaskForm):
    password = PasswordField("Password", validators=[InputRequired("enter the password")])
