"""What every store shares: the names it keeps, their content types, and when a file is settled."""

from __future__ import annotations

import re

from pneumoscan.formats import FORMATS, PNG

# An upload in flight is never this old, so an older file without a row is an orphan; the
# frequent sweeps look back only a day.
ORPHAN_SECONDS = 600
ORPHAN_WINDOW_SECONDS = 86400
# Uploads kept as sent, plus PNG for heatmaps and the pixels of uploads that are not kept.
CONTENT_TYPES = {PNG.stored_suffix: PNG.mime_type} | {
    f.stored_suffix: f.mime_type for f in FORMATS if f.kept_as_uploaded
}
HEATMAP_SUFFIX = f".heatmap{PNG.stored_suffix}"
_STORED_NAME = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rf"(?:{re.escape(HEATMAP_SUFFIX)}|{'|'.join(re.escape(suffix) for suffix in CONTENT_TYPES)})"
)


def stored_names(prediction_id: str, image_suffix: str) -> tuple[str, str]:
    """The names a result's image and heatmap are stored under: the store names what it stores,
    from the result's id, never from a client or an archive."""
    names = (f"{prediction_id}{image_suffix}", f"{prediction_id}{HEATMAP_SUFFIX}")
    for name in names:
        check_name(name)
    return names


def is_stored_name(name: str) -> bool:
    """Whether `name` is one this module could have made: `<uuid>.<ext>` or `<uuid>.heatmap.png`."""
    return _STORED_NAME.fullmatch(name) is not None


def check_name(name: str) -> None:
    """Refuses any other name before a store writes it, so nothing outside the store is written."""
    if not is_stored_name(name):
        raise ValueError(f"not a stored file name: {name!r}")
