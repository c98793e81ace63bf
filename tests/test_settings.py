"""Settings: a bad value stops the start with one line naming it; the README's table lists them all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pneumoscan.web.config import MEGABYTE, Settings, SettingsError, load_settings
from tests.conftest import REPO_ROOT


def start(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`import app` in a fresh interpreter, as gunicorn and flask do."""
    return subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("MAX_CONTENT_LENGTH", "20MB", "valid integer"),
        ("OPEN_DEMO", "ture", "true/false/1/0/yes/no/on/off"),
        ("SESSION_COOKIE_SECURE", "yes-please", "true/false/1/0/yes/no/on/off"),
        ("RATE_LIMIT", "lots", "30/minute"),
    ],
)
def test_a_bad_value_stops_import_app_with_one_line_naming_it(name, value, accepts):
    started = start({name: value})

    assert started.returncode == 1
    assert started.stderr.count("\n") == 1 and "Traceback" not in started.stderr
    assert f"{name}={value!r}" in started.stderr and accepts in started.stderr


@pytest.mark.parametrize(("word", "meaning"), [("TRUE", True), ("on", True), ("0", False), ("No", False)])
def test_booleans_take_the_eight_words_in_any_case(monkeypatch, word, meaning):
    monkeypatch.setenv("KEEP_FILENAMES", word)
    assert load_settings().KEEP_FILENAMES is meaning


@pytest.mark.parametrize("word", ["t", "y", "enabled", "2"])
def test_booleans_refuse_other_words(monkeypatch, word):
    monkeypatch.setenv("OPEN_DEMO", word)
    with pytest.raises(SettingsError, match="OPEN_DEMO"):
        load_settings()


def test_blank_takes_the_default_except_rate_limit_where_it_means_none(monkeypatch):
    monkeypatch.setenv("MAX_CONTENT_LENGTH", " ")
    monkeypatch.setenv("RATE_LIMIT", "")
    settings = load_settings()
    assert settings.MAX_CONTENT_LENGTH == 20 * MEGABYTE
    assert settings.RATE_LIMIT == ""


def test_s3_storage_needs_a_bucket(monkeypatch):
    monkeypatch.setenv("STORAGE", "s3")
    monkeypatch.delenv("S3_BUCKET", raising=False)
    with pytest.raises(SettingsError, match="S3_BUCKET"):
        load_settings()


def test_the_readme_table_lists_every_setting():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Environment variables", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, flags=re.MULTILINE))
    assert documented == set(Settings.model_fields)


@pytest.mark.parametrize(
    "command",
    [["gunicorn", "app:app", "--config", "gunicorn.conf.py", "--check-config"], ["alembic", "current"]],
    ids=["gunicorn", "release step"],
)
def test_the_server_and_the_release_step_stop_with_the_same_line(command):
    executable = str(Path(sys.executable).parent / command[0])
    started = subprocess.run(
        [executable, *command[1:]],
        cwd=REPO_ROOT,
        env={**os.environ, "OPEN_DEMO": "ture"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 1
    assert started.stderr == "bad setting: OPEN_DEMO='ture': accepts only true/false/1/0/yes/no/on/off\n"
