"""A client's file name made safe to show; files are always stored under generated names."""

from __future__ import annotations

import re
import unicodedata

MAX_FILENAME_LENGTH = 255


def sanitise_filename(raw: str | None) -> str:
    """A client's file name made safe to keep and show: last path part, no control characters.

    Only ever recorded for display; files are stored under generated names.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.replace("..", "").strip().lstrip(".").strip()
    return name[:MAX_FILENAME_LENGTH] or "upload"
