"""Shared fixtures: the web app on a throw-away database and upload folder, real X-rays, the real model."""

from __future__ import annotations

import io
import itertools
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.serving import make_server

from pneumoscan.dataset import LabelledImage, list_labelled_images, split_by_patient, training_folder
from pneumoscan.model_card import CARD_FILE, CLASS_NAMES, ModelCard
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


@pytest.fixture(scope="session")
def validation_items(xray_dir: Path, model_dir: Path) -> list[LabelledImage]:
    """The patients the committed model was not fitted on: its card's validation split."""
    training = ModelCard.load(model_dir).extra["training"]
    _, val = split_by_patient(
        list_labelled_images(xray_dir), training["val_fraction"], training["split_seed"]
    )
    return val


@pytest.fixture(scope="session")
def subtype_model_dir(model_dir: Path) -> Path:
    """The committed model when it has the subtype head; tests of the subtype skip until it has."""
    if ModelCard.load(model_dir).subtype is None:
        pytest.skip(f"the model in {model_dir} has no subtype head (its card has no 'subtype' section)")
    return model_dir


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
        from pneumoscan.web import db
        from pneumoscan.web.accounts import rules

        self.app = app
        with app.app_context():
            session = db.session()
            self.admin = rules.create(session, "ada@clinic.example", "Dr Ada Admin", "admin", PASSWORD)
            self.clinician = rules.create(
                session, "cy@clinic.example", "Dr Cy Clinician", "clinician", PASSWORD
            )
            session.commit()

    def client(self, user=None) -> FlaskClient:
        """A test client, signed in through the login form as `user` when given; like a browser on
        this site, it sends its Origin (cookie-carried API writes need one)."""
        client = self.app.test_client()
        client.environ_base["HTTP_ORIGIN"] = "http://localhost"
        if user is not None:
            answer = post_login(client, user.email)
            assert answer.status_code == 303, answer.get_data(as_text=True)
        return client

    def token(self, user, name: str = "test") -> str:
        from pneumoscan.web import db
        from pneumoscan.web.accounts import tokens

        with self.app.app_context():
            _row, token = tokens.issue(db.session(), user, name)
            db.session().commit()
        return token


@pytest.fixture
def users(app) -> Accounts:
    """Two accounts on `app`: from now on it needs a signed-in user or a token."""
    return Accounts(app)


def add_result(
    app,
    *,
    probability: float | None = None,
    threshold: float = 0.5,
    label: str | None = None,
    logit: float | None = None,
    model_version: str = "test-model",
    findings: Sequence[str] = (),
    created_at: datetime | None = None,
    uploaded_by=None,
    case_reference: str | None = None,
    gate_reading: dict | None = None,
    viral_probability: float | None = None,
    subtype: str | None = None,
    subtype_finding: str | None = None,
) -> str:
    """A result row written straight to the database and committed (no model run, no files), for
    tests of what is done with results once they exist: reviews, history filters, exports, the
    dashboard, drift and the site threshold. Returns its id.

    The label is the one `threshold` gives `probability` unless given; without a probability, a
    PNEUMONIA label has 0.9 and any other 0.1. Each of `findings` becomes a review version (1, 2,
    ...; the last one counts) with no reviewer, the last one with `subtype_finding`; `uploaded_by`
    is a user (only its id is read).
    """
    from pneumoscan.web import db
    from pneumoscan.web.models import Result, Review, utc_now

    if probability is None:
        probability = 0.9 if label == "PNEUMONIA" else 0.1
    if label is None:
        label = "PNEUMONIA" if probability >= threshold else "NORMAL"
    prediction_id = str(uuid.uuid4())
    with app.app_context():
        session = db.session()
        session.add(
            Result(
                id=prediction_id,
                created_at=created_at or utc_now(),
                original_filename="",
                sha256="0" * 64,
                width=512,
                height=512,
                source_format="png",
                probability=probability,
                logit=logit,
                label=label,
                threshold=threshold,
                model_version=model_version,
                inference_ms=10.0,
                image_path=f"{prediction_id}.png",
                heatmap_path=f"{prediction_id}.heatmap.png",
                uploaded_by_id=uploaded_by.id if uploaded_by is not None else None,
                case_reference=case_reference,
                gate_reading=gate_reading,
                viral_probability=viral_probability,
                subtype=subtype,
            )
        )
        for version, finding in enumerate(findings, start=1):
            last = version == len(findings)
            session.add(
                Review(
                    prediction_id=prediction_id,
                    version=version,
                    finding=finding,
                    subtype_finding=subtype_finding if last else None,
                )
            )
        session.commit()
    return prediction_id


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_url(app, users):
    """The test app, with accounts, served by werkzeug on a free loopback port for one test."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page():
    """A Chromium page (Playwright driving Debian's chromium) for real-browser tests."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright (requirements-dev.txt) is not installed"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; `make test` installs Debian's chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


@pytest.fixture
def console(page) -> list[str]:
    """Console messages of the page; a CSP violation shows up here."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    return messages


def inline_code(html: str) -> list[str]:
    """The page's inline scripts, style elements and style attributes (the CSP refuses them); a
    script from static/ is fine."""
    tags = re.findall(r"<script\b[^>]*>", html)
    scripts = [tag for tag in tags if not re.search(r'src="/static/[^"]+\.js"', tag)]
    return scripts + re.findall(r"<style\b|\bstyle=", html)


def csp_violations(console: list[str]) -> list[str]:
    """The Content-Security-Policy violations among the console messages."""
    return [text for text in console if "Content Security Policy" in text]


def sign_in_browser(page, live_url: str, user) -> None:
    """Signs `user` in through the login form in the browser."""
    page.goto(f"{live_url}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def upload_through_api(page, live_url: str, data: bytes, case_reference: str = "") -> str:
    """One X-ray through the API with the browser's own session; returns the result's id."""
    answer = page.request.post(
        f"{live_url}/api/v1/predictions",
        headers={"Origin": live_url},  # as the browser's own fetch would send it
        multipart={
            "file": {"name": "xray", "mimeType": "application/octet-stream", "buffer": data},
            "case_reference": case_reference,
        },
    )
    assert answer.status == 201, answer.text()
    return answer.json()["id"]


def tall_xray(path) -> bytes:
    """A real X-ray scaled up to a tall 1600×2000 PNG: the layout's hardest case for one page."""
    buffer = io.BytesIO()
    Image.open(path).convert("L").resize((1600, 2000)).save(buffer, "PNG")
    return buffer.getvalue()


def loaded_images(page) -> list[dict]:
    """Each image of the page: its URL, whether it finished loading, and its natural width."""
    return page.evaluate(
        "() => Array.from(document.images)"
        ".map(i => ({src: i.src, complete: i.complete, width: i.naturalWidth}))"
    )


def colour_png() -> bytes:
    """A colourful picture: a photograph, not an X-ray."""
    ramp = np.linspace(0, 255, 256, dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 255 - ramp[:, None]), axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "PNG")
    return buffer.getvalue()
