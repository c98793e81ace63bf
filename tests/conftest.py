"""Shared fixtures: the web app on a throw-away database and upload folder, real X-rays, the real model."""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from pneumoscan.dataset import training_folder
from pneumoscan.model_card import CARD_FILE, CLASS_NAMES
from tests.servers import PostgresServer, postgres_server, redis_server

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO_ROOT / "model_weights"


class BufferedClient(FlaskClient):
    """Reads each response whole and closes it, as a WSGI server does, so no served file stays open."""

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture(scope="session")
def buffered_client_class() -> type[FlaskClient]:
    """For tests that build their app themselves."""
    return BufferedClient


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--screenshot-to", metavar="PNG", help="also save the browser test's result page here")


@pytest.fixture(scope="session")
def xray_dir() -> Path:
    """The folder holding NORMAL/ and PNEUMONIA/ training X-rays; skips when the data is absent."""
    folder = training_folder()
    if not all((folder / name).is_dir() for name in CLASS_NAMES):
        pytest.skip(f"real chest X-rays not found at {folder}; set PNEUMOSCAN_DATA to the data folder")
    return folder


@pytest.fixture(scope="session")
def xray_paths(xray_dir: Path) -> list[Path]:
    """Every training X-ray, alternating NORMAL, PNEUMONIA, ... so any prefix holds both classes."""
    normal, pneumonia = (sorted((xray_dir / name).glob("*.jpeg")) for name in CLASS_NAMES)
    if not normal or not pneumonia:
        pytest.skip(f"no .jpeg X-rays under {xray_dir}")
    paired = itertools.zip_longest(normal, pneumonia)
    return [path for pair in paired for path in pair if path is not None]


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The committed model; tests that score images skip when model_weights/ holds none."""
    if not (MODEL_DIR / CARD_FILE).is_file():
        pytest.skip(f"no model in {MODEL_DIR} yet ({CARD_FILE} missing)")
    return MODEL_DIR


@pytest.fixture
def model_copy(tmp_path: Path, model_dir: Path) -> Path:
    """A model folder whose card a test may change: the card copied, the weights linked."""
    copy = tmp_path / "model"
    copy.mkdir()
    for path in model_dir.iterdir():
        if path.name == CARD_FILE:
            shutil.copy(path, copy / path.name)
        else:
            (copy / path.name).symlink_to(path)
    return copy


def migrate(url: str) -> None:
    """What the release step does before an app starts: bring the database to the code's schema."""
    from pneumoscan.web import db, schema

    engine = db.make_engine(url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def upgrade_database() -> Callable[[str], None]:
    """For tests that build their app (or a server) on a database of their own."""
    return migrate


@pytest.fixture
def make_app(tmp_path: Path, model_dir: Path) -> Callable:
    """Build an app on a fresh SQLite file and upload folder; keyword arguments override config.

    OPEN_DEMO is on, so an app without accounts is open as before accounts existed; tests of
    accounts add users (the `users` fixture), which closes it. Every app's connection pool is
    emptied afterwards, so no connection outlives its test.
    """
    from pneumoscan.web import create_app, db

    built = []

    def build(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'pneumoscan.sqlite'}",
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "MODEL_DIR": str(model_dir),
            "ORT_THREADS": 1,
            "RATE_LIMIT": "",
            "OPEN_DEMO": True,
        }
        config.update(overrides)
        migrate(config["DATABASE_URL"])
        app = create_app(config)
        app.test_client_class = BufferedClient
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions[db.EXTENSION].engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def fetch_csrf_token(client, path: str = "/") -> str:
    """The CSRF token from a page the client fetches, as a browser would submit it."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def csrf_token() -> Callable:
    return fetch_csrf_token


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    """One throw-away PostgreSQL cluster for the session; skips when its binaries are absent."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url() -> str:
    """One throw-away Redis server for the session; skips when redis-server is absent."""
    with redis_server() as url:
        yield url


def _hypothesis_profile() -> None:
    """Fixed examples, no example database and a modest count, so CI runs are the same every time
    and the fuzz tests take seconds on two cores."""
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "pneumoscan",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=60,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    settings.load_profile("pneumoscan")


_hypothesis_profile()


PASSWORD = "correct horse battery staple"


def post_login(client, email: str, password: str = PASSWORD, path: str = "/login"):
    """Submits the login form as a browser would, CSRF token included."""
    token = fetch_csrf_token(client, "/login")
    return client.post(path, data={"csrf_token": token, "email": email, "password": password})


def run_flask(app, *args: str, password: str | None = None):
    """`flask --app app ARGS...` on this app, with `password` piped to stdin."""
    return app.test_cli_runner().invoke(args=list(args), input=f"{password}\n" if password else None)


class Accounts:
    """An admin and a clinician on one app, with helpers to sign a client in and make tokens."""

    def __init__(self, app) -> None:
        from pneumoscan.web import accounts, db

        self.app = app
        with app.app_context():
            session = db.session()
            self.admin = accounts.create(session, "ada@clinic.example", "Dr Ada Admin", "admin", PASSWORD)
            self.clinician = accounts.create(
                session, "cy@clinic.example", "Dr Cy Clinician", "clinician", PASSWORD
            )
            session.commit()

    def client(self, user=None) -> FlaskClient:
        """A test client, signed in through the login form as `user` when given."""
        client = self.app.test_client()
        if user is not None:
            answer = post_login(client, user.email)
            assert answer.status_code == 303, answer.get_data(as_text=True)
        return client

    def token(self, user, name: str = "test") -> str:
        from pneumoscan.web import db, tokens

        with self.app.app_context():
            _row, token = tokens.issue(db.session(), user, name)
            db.session().commit()
        return token


@pytest.fixture
def users(app) -> Accounts:
    """Two accounts on `app`: from now on it needs a signed-in user or a token."""
    return Accounts(app)
