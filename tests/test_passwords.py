"""New passwords and emails are checked (NIST SP 800-63B, email syntax without DNS), and password
hashing is bounded per process."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import PASSWORD, Accounts

from pneumoscan.web import db
from pneumoscan.web.accounts import passwords, rules


@pytest.mark.parametrize(
    "weak", ["1234567890", "aaaaaaaaaa", "new@clinic.example", " " * 10, "password12", "Dr New Person"]
)
def test_guessable_passwords_and_the_accounts_own_details_are_refused(app, weak):
    with app.app_context(), pytest.raises(rules.AccountError):
        rules.create(db.session(), "new@clinic.example", "Dr New Person", "clinician", weak)


def test_a_passphrase_is_accepted_and_a_reset_is_checked_against_the_account(app):
    users = Accounts(app)
    with app.app_context():
        session = db.session()
        clinician = session.get(type(users.clinician), users.clinician.id)
        with pytest.raises(rules.AccountError, match="too easy"):
            rules.set_password(session, clinician, "cy@clinic.example")
        rules.set_password(session, clinician, "violet tram under seven hills")
        session.commit()


@pytest.mark.parametrize(
    "email", ["@", "a@", "@clinic.example", "no-at-sign", "a@@b.example", "a b@c.example"]
)
def test_invalid_emails_are_refused(app, email):
    with app.app_context(), pytest.raises(rules.AccountError, match="valid email"):
        rules.create(db.session(), email, "Someone", "clinician", PASSWORD)


def test_internal_domains_are_accepted_without_a_dns_look_up(app):
    with app.app_context():
        user = rules.create(db.session(), "ward7@radiology", "Ward Seven", "clinician", PASSWORD)
    assert user.email == "ward7@radiology"


def test_at_most_hashing_slots_hashes_run_at_once(monkeypatch):
    running, peak, lock = 0, 0, threading.Lock()
    real = passwords.check_password_hash

    def counted(password_hash: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        try:
            return real(password_hash, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(passwords, "check_password_hash", counted)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _n: rules.check_password(None, "wrong"), range(32)))

    assert answers == [False] * 32 and peak == passwords.HASHING_SLOTS
