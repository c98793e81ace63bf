"""The web package's imports run one way: views import rules, never other views; the server layer
and the shared core import no feature. Counts imports inside functions too (test_imports' graph)."""

from __future__ import annotations

import ast

from tests.import_graph import PACKAGE, import_graph, module_name

WEB = "pneumoscan.web"
FEATURES = ("accounts", "results", "monitoring", "api")


def view_modules() -> set[str]:
    """Modules that make a Blueprint: those are views, whatever their name."""
    views = set()
    for path in (PACKAGE / "web").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint":
                views.add(module_name(path))
    return views


def layer(module: str) -> str | None:
    """'server', a feature's name, 'core' for the modules directly in web/, 'app' for the factory."""
    if module == WEB:
        return "app"
    if not module.startswith(f"{WEB}."):
        return None
    part = module.split(".")[2]
    return part if part in (*FEATURES, "server", "migrations") else "core"


def wrong_way(graph: dict[str, set[str]], views: set[str]) -> list[str]:
    """Every import that runs the wrong way, as 'importer -> imported (rule)'."""
    found = []
    for importer, targets in graph.items():
        for target in targets:
            if importer in views and target in views:
                found.append(f"{importer} -> {target} (a view imports a view)")
            if layer(importer) in ("server", "core") and layer(target) in FEATURES:
                found.append(f"{importer} -> {target} ({layer(importer)} imports a feature)")
            if layer(importer) == "server" and layer(target) == "app":
                found.append(f"{importer} -> {target} (server imports the app factory)")
    return sorted(found)


def test_finds_an_import_the_wrong_way():
    graph = {
        f"{WEB}.results.pages": {f"{WEB}.monitoring.dashboard"},
        f"{WEB}.server.error_handlers": {f"{WEB}.results.pages"},
        f"{WEB}.storage": {f"{WEB}.results.reviews"},
        f"{WEB}.api.routes": {f"{WEB}.results.lookup", f"{WEB}.server.rate_limits"},
    }
    views = {f"{WEB}.results.pages", f"{WEB}.monitoring.dashboard", f"{WEB}.api.routes"}
    assert wrong_way(graph, views) == [
        f"{WEB}.results.pages -> {WEB}.monitoring.dashboard (a view imports a view)",
        f"{WEB}.server.error_handlers -> {WEB}.results.pages (server imports a feature)",
        f"{WEB}.storage -> {WEB}.results.reviews (core imports a feature)",
    ]


def test_sees_the_blueprints():
    assert {f"{WEB}.results.pages", f"{WEB}.api.routes", f"{WEB}.accounts.signin"} <= view_modules()


def test_imports_run_one_way():
    assert wrong_way(import_graph(), view_modules()) == []


def test_web_keeps_at_most_fifteen_modules_at_its_top():
    assert len(list((PACKAGE / "web").glob("*.py"))) <= 15
