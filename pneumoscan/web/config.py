"""Settings read from the environment, with defaults that work on a laptop and a small PaaS."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pneumoscan

# The folder the package runs from: the default model (as pneumoscan.inference) and, where
# Flask keeps it for a package run from its checkout, the instance folder.
CHECKOUT = Path(pneumoscan.__file__).resolve().parent.parent
INSTANCE_PATH = CHECKOUT / "instance"
MEGABYTE = 1024 * 1024


def _int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return value in ("1", "true", "yes", "on") if value else default


def secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder.

    Keeping it in a file means sessions and CSRF tokens survive restarts and are shared by
    all workers started from the same checkout.
    """
    from_env = os.environ.get("SECRET_KEY", "").strip()
    if from_env:
        return from_env
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        draft = instance_path / f".secret_key.{os.getpid()}"
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return key_file.read_text().strip()


def database_url(instance_path: Path) -> str:
    """DATABASE_URL, else a SQLite file in the instance folder (the app and Alembic both use this)."""
    from_env = os.environ.get("DATABASE_URL", "").strip()
    if from_env:
        return from_env
    instance_path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance_path / 'pneumoscan.sqlite'}"


def from_environment(instance_path: Path, given: dict | None = None) -> dict:
    """Every setting the app reads; values in `given` (tests) win over the environment.

    README documents the same names and defaults.
    """
    concurrency = _int("WEB_CONCURRENCY", 1) or 1
    settings = {
        "DATABASE_URL": os.environ.get("DATABASE_URL", "").strip(),
        "STORAGE": os.environ.get("STORAGE", "").strip().lower() or "filesystem",
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER", "").strip() or str(instance_path / "uploads"),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 20 * MEGABYTE),
        "WEB_CONCURRENCY": concurrency,
        "RATE_LIMIT": os.environ.get("RATE_LIMIT", "30/minute").strip(),
        "RATE_LIMIT_STORAGE_URI": os.environ.get("RATE_LIMIT_STORAGE_URI", "").strip() or "memory://",
        "OPEN_DEMO": _flag("OPEN_DEMO", False),
        "SESSION_IDLE_MINUTES": _int("SESSION_IDLE_MINUTES", 60),
        "RETENTION_DAYS": _int("RETENTION_DAYS", None),
        "KEEP_FILENAMES": _flag("KEEP_FILENAMES", False),
        "MODEL_DIR": os.environ.get("MODEL_DIR", "").strip() or str(CHECKOUT / "model_weights"),
        "ORT_THREADS": _int("ORT_THREADS", max(1, (os.cpu_count() or 1) // concurrency)),
        "TRUST_PROXY": _int("TRUST_PROXY", 0),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "").strip(),
        "SWEEP_SECONDS": _int("SWEEP_SECONDS", 900),
        "BODY_TIMEOUT": _int("BODY_TIMEOUT", 20),
        "SCORING_SLOTS": _int("SCORING_SLOTS", 2),
        "SESSION_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE", False),
        "HISTORY_PER_PAGE": _int("HISTORY_PER_PAGE", 20),
        "MAX_FILES_PER_UPLOAD": _int("MAX_FILES_PER_UPLOAD", 10),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }
    settings.update(given or {})
    settings["DATABASE_URL"] = settings["DATABASE_URL"] or database_url(instance_path)
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = secret_key(instance_path)
    return settings
