"""A stored result as the API writes it: the values here, their shape in api/schemas.py; the field
names are the API's contract, so they stay."""

from __future__ import annotations

from flask import current_app, url_for

from pneumoscan.web.api import schemas
from pneumoscan.web.models import Result, Review

RESULT = schemas.Result()
REVIEW = schemas.Review()


def public_url(endpoint: str, **values) -> str:
    """Absolute under PUBLIC_URL when it is set, else relative: never built from the Host header."""
    path = url_for(endpoint, **values)
    base = current_app.config.get("PUBLIC_URL", "")
    return f"{base.rstrip('/')}{path}" if base else path


def subtype_of(row: Result) -> dict | None:
    """The subtype estimate, or None where the model gave none (the label only for PNEUMONIA)."""
    if row.viral_probability is None:
        return None
    return {
        "label": row.subtype,
        "viral_probability": row.viral_probability,
        "threshold": row.subtype_threshold,
    }


def as_json(row: Result, review: Review | None) -> dict:
    """A result with its latest review (None while unreviewed)."""
    return RESULT.dump(
        {
            "id": row.id,
            "label": row.label,
            "probability": row.probability,
            "threshold": row.threshold,
            "threshold_source": "site" if row.site_threshold_id is not None else "model card",
            "model_version": row.model_version,
            "heatmap_url": public_url("files.heatmap", prediction_id=row.id),
            "image_url": public_url("files.image", prediction_id=row.id),
            "created_at": row.created_at,
            "original_filename": row.original_filename or None,
            "uploaded_by": row.uploaded_by,
            "source_format": row.source_format,
            "width": row.width,
            "height": row.height,
            "sha256": row.sha256,
            "inference_ms": row.inference_ms,
            "case_reference": row.case_reference,
            "subtype": subtype_of(row),
            "review": review,
        }
    )


def review_as_json(review: Review) -> dict:
    return REVIEW.dump(review)
