"""The upload and review forms; a file's type is decided from its content, not its extension."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileRequired, MultipleFileField
from wtforms import Field, RadioField, SelectChoice, StringField, TextAreaField, ValidationError
from wtforms.validators import InputRequired, Length

from pneumoscan.formats import ACCEPTED_LABELS, FILE_PICKER_ACCEPT
from pneumoscan.model_card import SUBTYPE_NAMES
from pneumoscan.web.models import FINDINGS
from pneumoscan.web.results import case_reference
from pneumoscan.web.results.reviews import MAX_NOTE_LENGTH


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


NOT_ASSESSED = SelectChoice("", "not assessed")


class ReviewForm(FlaskForm):
    """A clinician's confirmed finding for a result, and for a pneumonia optionally its subtype;
    saving again adds a version."""

    finding = RadioField(
        "Confirmed finding",
        choices=[SelectChoice(finding) for finding in FINDINGS],
        validators=[InputRequired("choose PNEUMONIA, NORMAL or UNSURE")],
    )
    subtype_finding = RadioField(
        "Confirmed subtype of a pneumonia (optional)",
        choices=[*(SelectChoice(name) for name in SUBTYPE_NAMES), NOT_ASSESSED],
        default=NOT_ASSESSED.value,
    )
    note = TextAreaField(
        "Note (optional)",
        validators=[
            Length(max=MAX_NOTE_LENGTH, message=f"the note is limited to {MAX_NOTE_LENGTH} characters")
        ],
        render_kw={"maxlength": MAX_NOTE_LENGTH, "rows": 3},
    )
