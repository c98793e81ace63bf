"""The API's bodies as marshmallow schemas: they load what a client sends, dump what the API
answers, and are what the OpenAPI document (api/openapi.py) describes, so the three agree."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from pneumoscan.errors import Refused
from pneumoscan.model_card import CLASS_NAMES, SUBTYPE_NAMES
from pneumoscan.web.models import FINDINGS

# The list's page size: by default, and at most.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Strict(Schema):
    """A body with exactly its declared keys: unknown keys are refused on load, and the document
    says so (additionalProperties: false), so a response with an extra key fails the tests.
    Messages follow the field's name: "'note' must be text"."""

    error_messages = {"unknown": "is not a field of this body"}

    class Meta:
        unknown = RAISE


class Error(Strict):
    error = fields.String(required=True, metadata={"description": "what went wrong, in words"})


class Person(Strict):
    id = fields.Integer(required=True)
    name = fields.String(required=True, attribute="display_name")


class Review(Strict):
    """One version of a clinician's review; the highest version is the one that counts."""

    id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    finding = fields.String(required=True, validate=validate.OneOf(FINDINGS))
    note = fields.String(required=True, allow_none=True)
    subtype_finding = fields.String(required=True, allow_none=True, validate=validate.OneOf(SUBTYPE_NAMES))
    reviewer = fields.Nested(Person, required=True, allow_none=True)
    created_at = fields.DateTime(required=True, format="iso")


def _one_of(choices: tuple[str, ...]) -> str:
    return f"must be one of {', '.join(choices)}"


class ReviewBody(Strict):
    """What POST /predictions/<id>/review takes; the note's length and stripping are results.reviews'."""

    finding = fields.String(
        required=True,
        validate=validate.OneOf(FINDINGS, error=_one_of(FINDINGS)),
        error_messages={key: _one_of(FINDINGS) for key in ("required", "null", "invalid")},
    )
    note = fields.String(allow_none=True, load_default=None, error_messages={"invalid": "must be text"})
    subtype_finding = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(SUBTYPE_NAMES, error=_one_of(SUBTYPE_NAMES)),
        error_messages={"invalid": _one_of(SUBTYPE_NAMES)},
    )


class Subtype(Strict):
    """Bacterial or viral: the label is given only where the main label is PNEUMONIA."""

    label = fields.String(required=True, allow_none=True, validate=validate.OneOf(SUBTYPE_NAMES))
    viral_probability = fields.Float(required=True)
    threshold = fields.Float(required=True)


class Result(Strict):
    """A stored result with its latest review (null while unreviewed)."""

    id = fields.String(required=True, metadata={"format": "uuid"})
    label = fields.String(required=True, validate=validate.OneOf(CLASS_NAMES))
    probability = fields.Float(required=True, metadata={"description": "calibrated, of pneumonia"})
    threshold = fields.Float(required=True)
    threshold_source = fields.String(required=True, validate=validate.OneOf(("site", "model card")))
    model_version = fields.String(required=True)
    heatmap_url = fields.String(required=True)
    image_url = fields.String(required=True)
    created_at = fields.DateTime(required=True, format="iso")
    original_filename = fields.String(required=True, allow_none=True)
    uploaded_by = fields.Nested(Person, required=True, allow_none=True)
    source_format = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    inference_ms = fields.Float(required=True)
    case_reference = fields.String(required=True, allow_none=True)
    subtype = fields.Nested(Subtype, required=True, allow_none=True)
    review = fields.Nested(Review, required=True, allow_none=True)


class Page(Strict):
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    items = fields.List(fields.Nested(Result), required=True)


class Map(Strict):
    """The Grad-CAM grid at its native size, covering the image as stretched to the model's square
    input: values in [0, 1], not weighted by the probability, row 0 at the top."""

    shape = fields.List(fields.Integer(), required=True, validate=validate.Length(equal=2))
    values = fields.List(fields.List(fields.Float()), required=True)
    range = fields.List(fields.Float(), required=True, validate=validate.Length(equal=2))
    row_0 = fields.String(required=True, validate=validate.OneOf(("top",)))


def load_body(schema: Schema, body: object) -> dict:
    """A client's JSON body as `schema` loads it, or a 400 naming the first field at fault."""
    if not isinstance(body, dict):
        raise Refused("send a JSON object", 400)
    try:
        return schema.load(body)
    except ValidationError as error:
        field, problems = next(iter(error.normalized_messages().items()))
        problem = problems[0] if isinstance(problems, list) else problems
        raise Refused(f"'{field}' {problem}", 400) from error
