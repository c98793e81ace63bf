"""What every store shares: the names it keeps, their content types, and when a file is settled."""

from __future__ import annotations

import os
from pathlib import Path

from pneumoscan.formats import FORMATS, PNG

# An upload in flight is never this old, so an older file without a row is an orphan; the
# frequent sweeps look back only a day.
ORPHAN_SECONDS = 600
ORPHAN_WINDOW_SECONDS = 86400
# Uploads kept as sent, plus PNG for heatmaps and the pixels of uploads that are not kept.
CONTENT_TYPES = {PNG.stored_suffix: PNG.mime_type} | {
    f.stored_suffix: f.mime_type for f in FORMATS if f.kept_as_uploaded
}


def is_stored_name(name: str) -> bool:
    """A name a store made (`<uuid>.<ext>`): no folder, no dot file, a known type."""
    return name == os.path.basename(name) and not name.startswith(".") and Path(name).suffix in CONTENT_TYPES
