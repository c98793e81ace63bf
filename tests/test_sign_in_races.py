"""Sign-in and first run under concurrency: the throttle holds (at most five wrong passwords are
ever checked, no 500), one first admin, a per-address setup lock, and unsafe `next` values."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import PASSWORD, Accounts, fetch_csrf_token, post_login
from sqlalchemy import func, select

from pneumoscan.web import db
from pneumoscan.web.accounts import first_run, rules
from pneumoscan.web.models import AuditEvent, User


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'races.sqlite'}"
    return request.getfixturevalue("postgres").new_database()


def _at_once(count: int, prepare, send) -> list:
    """Each of `count` clients runs `prepare` on its own, then all `send` together."""
    barrier = threading.Barrier(count)

    def one(number: int):
        state = prepare(number)
        barrier.wait(timeout=60)
        return send(number, state)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_thirty_concurrent_sign_ins_check_at_most_five_wrong_passwords(make_app, database_url, monkeypatch):
    app = make_app(DATABASE_URL=database_url, WTF_CSRF_ENABLED=True)
    users = Accounts(app)
    real_check, checked = rules.check_password, []
    monkeypatch.setattr(
        rules, "check_password", lambda user, password: checked.append(password) or real_check(user, password)
    )

    def prepare(_number: int):
        client = app.test_client()
        return client, fetch_csrf_token(client, "/login")

    def send(_number: int, state):
        client, token = state
        form = {"csrf_token": token, "email": users.clinician.email, "password": "wrong password here"}
        return client.post("/login", data=form).status_code

    statuses = _at_once(29, prepare, send)
    last = post_login(app.test_client(), users.clinician.email, PASSWORD)

    assert len(checked) <= 5, statuses
    assert set(statuses) <= {401, 429} and statuses.count(401) == len(checked)
    assert last.status_code == 429
    with app.app_context():
        failures = db.session().scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "sign-in-failed")
        )
    assert failures == len(checked)


def test_a_right_password_amid_concurrent_failures_never_gives_500(make_app, database_url):
    app = make_app(DATABASE_URL=database_url, WTF_CSRF_ENABLED=True)
    users = Accounts(app)

    def prepare(_number: int):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
        return client, fetch_csrf_token(client, "/login")

    def send(number: int, state):
        client, token = state
        password = PASSWORD if number % 2 else "wrong"
        form = {"csrf_token": token, "email": users.admin.email, "password": password}
        return client.post("/login", data=form).status_code

    statuses = _at_once(8, prepare, send)

    assert set(statuses) <= {303, 401, 429} and 303 in statuses, statuses


def _setup_form(app, client, email: str, code: str) -> dict:
    return {
        "csrf_token": fetch_csrf_token(client, "/setup"),
        "email": email,
        "display_name": "First",
        "password": PASSWORD,
        "code": code,
    }


def test_eight_concurrent_right_setup_codes_make_exactly_one_admin(make_app, database_url):
    app = make_app(DATABASE_URL=database_url, OPEN_DEMO=False, WTF_CSRF_ENABLED=True)
    code = first_run.setup_code(app.config["SECRET_KEY"])

    def prepare(number: int):
        client = app.test_client()
        return client, _setup_form(app, client, f"admin{number}@clinic.example", code)

    statuses = _at_once(8, prepare, lambda _n, state: state[0].post("/setup", data=state[1]).status_code)

    # The setup bucket counts every attempt before its code is checked, so when more than its five
    # free attempts are in flight at once the ones behind them wait (429) instead of being checked.
    assert statuses.count(303) == 1 and set(statuses) <= {302, 303, 429}, statuses
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(User)) == 1


def test_wrong_setup_codes_lock_only_their_own_address(make_app):
    app = make_app(OPEN_DEMO=False, WTF_CSRF_ENABLED=True)
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "198.51.100.66"
    answers = [
        guesser.post(
            "/setup", data=_setup_form(app, guesser, "x@clinic.example", "0000-0000-0000")
        ).status_code
        for _ in range(6)
    ]
    operator = app.test_client()
    operator.environ_base["REMOTE_ADDR"] = "203.0.113.1"
    code = first_run.setup_code(app.config["SECRET_KEY"])

    made = operator.post("/setup", data=_setup_form(app, operator, "op@clinic.example", code))

    assert answers == [400] * 5 + [429]
    assert made.status_code == 303


@pytest.mark.parametrize(
    "target",
    ["/\n\\evil.example", "/\\evil.example", "/\t/evil.example", "//evil.example", "https://evil.example"],
)
def test_an_unsafe_next_signs_in_and_goes_home(app, users, target):
    client = app.test_client()
    token = fetch_csrf_token(client, "/login")
    answer = client.post(
        "/login",
        query_string={"next": target},
        data={"csrf_token": token, "email": users.admin.email, "password": PASSWORD},
    )

    assert answer.status_code == 303 and answer.headers["Location"] == "/"


def test_a_safe_next_is_kept(app, users):
    answer = post_login(app.test_client(), users.admin.email, path="/login?next=/history%3Fpage%3D2")
    assert answer.status_code == 303 and answer.headers["Location"] == "/history?page=2"
