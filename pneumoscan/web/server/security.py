"""Response headers, request ids and the session cookie's Secure flag."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request
from flask.sessions import SecureCookieSessionInterface

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# same-origin rather than no-referrer: over HTTPS, Flask-WTF's CSRF check requires a same-site
# Referer, so no-referrer would make every form post fail; other sites still get nothing.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class SecureWhenHttpsSessions(SecureCookieSessionInterface):
    """Marks the session cookie Secure when configured so or when the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (bool(request) and request.is_secure)


def request_id() -> str:
    """The id logged with errors and shown to the user, so a report can be matched to a log line."""
    return g.get("request_id", "-")


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _add_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["X-Request-ID"] = request_id()
    return response


def init_app(app: Flask) -> None:
    app.session_interface = SecureWhenHttpsSessions()
    app.before_request(_assign_request_id)
    app.after_request(_add_headers)
