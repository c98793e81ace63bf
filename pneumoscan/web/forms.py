"""Flask-WTF forms: CSRF-protected, rendered by Jinja without JavaScript."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import PasswordField
from wtforms.validators import InputRequired

ACCEPTED_UPLOADS = ".jpg,.jpeg,.png,.dcm,image/jpeg,image/png,application/dicom"


class UploadForm(FlaskForm):
    """The file's type is decided from its content by pneumoscan.decode, not from its extension."""

    file = FileField(
        "Chest X-ray (JPEG, PNG or DICOM)",
        validators=[FileRequired("choose a chest X-ray file to upload")],
        render_kw={"accept": ACCEPTED_UPLOADS},
    )


class LoginForm(FlaskForm):
    password = PasswordField("Password", validators=[InputRequired("enter the password")])
