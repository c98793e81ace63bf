"""Passwords: which new ones are accepted, and hashing them within a memory bound.

New passwords follow NIST SP 800-63B: at least ten characters, and not guessable (zxcvbn scores
3 or more, with the account's email and name as words an attacker would try first), so common
passwords, repeats, sequences and the account's own details are refused.

Werkzeug's scrypt hash takes about 32 MiB while it runs, and a worker has up to 16 request
threads: at most HASHING_SLOTS hashes run at once per process (as SCORING_SLOTS bounds scoring),
so 32 concurrent sign-ins cost 2 x 32 MiB, not 16 x 32 MiB. The rest wait their turn.
"""

from __future__ import annotations

import threading

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

MIN_LENGTH = 10
MIN_SCORE = 3
HASHING_SLOTS = 2
_hashing = threading.BoundedSemaphore(HASHING_SLOTS)


def problem(password: str, email: str = "", name: str = "") -> str | None:
    """Why `password` may not be used for this account, or None when it may."""
    if len(password) < MIN_LENGTH:
        return f"passwords need at least {MIN_LENGTH} characters"
    if not password.strip():
        return "a password cannot be only spaces"
    details = [item for item in (email, email.split("@", 1)[0], name) if item]
    if zxcvbn(password[:100], user_inputs=details)["score"] < MIN_SCORE:
        return (
            "this password is too easy to guess (a common word, a pattern or your own details); "
            "try a few unrelated words"
        )
    return None


def hashed(password: str) -> str:
    with _hashing:
        return generate_password_hash(password)


def matches(password_hash: str, password: str) -> bool:
    with _hashing:
        return check_password_hash(password_hash, password)
