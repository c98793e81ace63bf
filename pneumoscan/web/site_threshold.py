"""The CLI's import path for the site threshold in use; the rule lives in pneumoscan.web.results.

Kept only until `pneumoscan.__main__` imports `pneumoscan.web.results.site_threshold.in_use_at`.
"""

from __future__ import annotations

from pneumoscan.web.results.site_threshold import in_use_at

__all__ = ["in_use_at"]
