"""axe-core (the npm package pinned in package-lock.json, installed by `make test`) run in a page.

The script is evaluated through the DevTools protocol, not added as a <script>, so the app's CSP
stays as strict as it is and axe sees the page exactly as a user does."""

from __future__ import annotations

from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    if not AXE.exists():
        pytest.skip(f"{AXE} not found; `make test` runs npm ci")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{page.url}: {violation['id']} ({violation['impact']}): "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in found
        if violation["impact"] in SERIOUS
    ]
