"""The API's JSON shapes, exactly: every key, no more, each with its type (a tuple allows several,
None allows null, a dict is a nested object)."""

from __future__ import annotations

PERSON = {"id": int, "name": str}
SUBTYPE = {"label": (str, None), "viral_probability": float, "threshold": float}
REVIEW = {
    "id": int,
    "version": int,
    "finding": str,
    "note": (str, None),
    "subtype_finding": (str, None),
    "reviewer": (PERSON, None),
    "created_at": str,
}
RESULT = {
    "id": str,
    "label": str,
    "probability": float,
    "threshold": float,
    "threshold_source": str,
    "model_version": str,
    "heatmap_url": str,
    "image_url": str,
    "created_at": str,
    "original_filename": (str, None),
    "uploaded_by": (PERSON, None),
    "source_format": str,
    "width": int,
    "height": int,
    "sha256": str,
    "inference_ms": float,
    "case_reference": (str, None),
    "subtype": (SUBTYPE, None),
    "review": (REVIEW, None),
}
PAGE = {"total": int, "limit": int, "offset": int, "items": list}


def _fits(value, kind) -> bool:
    if kind is None:
        return value is None
    if isinstance(kind, dict):
        return isinstance(value, dict) and not mismatches(value, kind)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def mismatches(value: dict, schema: dict, where: str = "") -> list[str]:
    """What in `value` differs from `schema`: missing or extra keys, and values of the wrong type."""
    found = [f"{where}{key}: missing" for key in schema.keys() - value.keys()]
    found += [f"{where}{key}: not in the schema" for key in value.keys() - schema.keys()]
    for key in schema.keys() & value.keys():
        kinds = schema[key] if isinstance(schema[key], tuple) else (schema[key],)
        if not any(_fits(value[key], kind) for kind in kinds):
            nested = next((kind for kind in kinds if isinstance(kind, dict)), None)
            if nested is not None and isinstance(value[key], dict):
                found += mismatches(value[key], nested, f"{where}{key}.")
            else:
                found.append(f"{where}{key}: {type(value[key]).__name__} {value[key]!r}")
    return sorted(found)
