"""Settings read from the environment, with defaults that work on a laptop and a small PaaS.

`Settings` is the one typed list of them (mirrored in the README's table, which a test checks).
It is read once at start: a bad value stops the start with one line naming the variable, the
value and what it accepts, so a typo never turns a flag silently off.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import pneumoscan

# The folder the package runs from: the default model (as pneumoscan.inference) and, where
# Flask keeps it for a package run from its checkout, the instance folder.
CHECKOUT = Path(pneumoscan.__file__).resolve().parent.parent
INSTANCE_PATH = CHECKOUT / "instance"
MEGABYTE = 1024 * 1024
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
BOOLEAN_WORDS = "true/false/1/0/yes/no/on/off"
# Empty means "off" for these, not "the default".
EMPTY_IS_A_VALUE = ("RATE_LIMIT",)


def _strict_bool(value: Any) -> Any:
    """Only the eight words (any case): pydantic's own parsing would also take 't' or 'n'."""
    if isinstance(value, bool):
        return value
    word = str(value).lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(f"accepts only {BOOLEAN_WORDS}")


Flag = Annotated[bool, BeforeValidator(_strict_bool)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


class SettingsError(ValueError):
    """A setting the environment got wrong; its text is the one line to show."""


class Settings(BaseSettings):
    """Every environment variable the server reads, typed; the README's table lists the same."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", validate_default=True)

    HOST: str = "0.0.0.0"
    PORT: Annotated[int, Field(ge=1, le=65535)] = 8000
    SECRET_KEY: str = ""
    DATABASE_URL: str = ""
    STORAGE: Literal["filesystem", "database", "s3"] = "filesystem"
    UPLOAD_FOLDER: str = ""
    S3_BUCKET: str = ""
    S3_ENDPOINT_URL: str = ""
    S3_PREFIX: str = ""
    MAX_CONTENT_LENGTH: Positive = 20 * MEGABYTE
    WEB_CONCURRENCY: Positive = 1
    ORT_THREADS: Positive | None = None
    RATE_LIMIT: str = "30/minute"
    RATE_LIMIT_STORAGE_URI: str = "memory://"
    OPEN_DEMO: Flag = False
    SESSION_IDLE_MINUTES: Positive = 60
    RETENTION_DAYS: Positive | None = None
    KEEP_FILENAMES: Flag = False
    SESSION_COOKIE_SECURE: Flag = False
    TRUST_PROXY: Count = 0
    MODEL_DIR: str = ""
    PUBLIC_URL: str = ""
    SWEEP_SECONDS: Count = 900
    BODY_TIMEOUT: Count = 20
    SCORING_SLOTS: Positive = 2
    HISTORY_PER_PAGE: Positive = 20
    MAX_FILES_PER_UPLOAD: Positive = 10
    LOG_FORMAT: Literal["text", "json"] = "text"

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: dict) -> dict:
        """Spaces are trimmed, and a variable set to nothing takes its default (as unset)."""
        trimmed = {key: value.strip() if isinstance(value, str) else value for key, value in values.items()}
        return {key: value for key, value in trimmed.items() if value != "" or key in EMPTY_IS_A_VALUE}

    @field_validator("STORAGE", "LOG_FORMAT", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("RATE_LIMIT")
    @classmethod
    def _rate_limit_form(cls, value: str) -> str:
        if value:
            try:
                parse_many(value)
            except ValueError:
                raise ValueError("RATE_LIMIT must look like '30/minute' (or be empty for none)") from None
        return value

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.STORAGE == "s3" and not self.S3_BUCKET:
            raise ValueError("STORAGE=s3 needs S3_BUCKET")
        return self


def _one_line(error: ValidationError) -> str:
    """`NAME='value': what it accepts`, one per bad variable, joined on one line."""
    parts = []
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        value = item["input"] if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{name}={value!r}: {message}" if item["loc"] else message)
    return "bad setting: " + "; ".join(parts)


def load_settings(given: dict | None = None) -> Settings:
    """The environment's settings (values in `given` win), or SettingsError with one line."""
    try:
        overrides = {key: value for key, value in (given or {}).items() if key in Settings.model_fields}
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_one_line(error)) from None


@contextmanager
def stop_on_bad_setting() -> Iterator[None]:
    """For entry points (app.py, gunicorn.conf.py, Alembic): a bad setting ends the process with
    its one line on stderr and exit status 1, not a traceback."""
    try:
        yield
    except SettingsError as error:
        raise SystemExit(str(error)) from None


def secret_key(instance_path: Path) -> str:
    """A key generated once and kept in the instance folder (when SECRET_KEY is not set).

    Keeping it in a file means sessions and CSRF tokens survive restarts and are shared by
    all workers started from the same checkout.
    """
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
    from_env = load_settings().DATABASE_URL
    if from_env:
        return from_env
    instance_path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance_path / 'pneumoscan.sqlite'}"


def from_environment(instance_path: Path, given: dict | None = None) -> dict:
    """Flask's config: the validated settings with their derived defaults; `given` (tests) wins."""
    settings = load_settings(given).model_dump()
    settings.update(
        UPLOAD_FOLDER=settings["UPLOAD_FOLDER"] or str(instance_path / "uploads"),
        MODEL_DIR=settings["MODEL_DIR"] or str(CHECKOUT / "model_weights"),
        ORT_THREADS=settings["ORT_THREADS"] or max(1, (os.cpu_count() or 1) // settings["WEB_CONCURRENCY"]),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    settings.update({key: value for key, value in (given or {}).items() if key not in Settings.model_fields})
    settings["DATABASE_URL"] = settings["DATABASE_URL"] or database_url(instance_path)
    settings["SECRET_KEY"] = settings["SECRET_KEY"] or secret_key(instance_path)
    return settings
