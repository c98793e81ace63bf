"""Every failure becomes a short message (HTML or JSON) with a status; stack traces stay in the log."""

from __future__ import annotations

import errno
from collections.abc import Callable

from flask import Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
    ServiceUnavailable,
    default_exceptions,
)

from pneumoscan.errors import Refused
from pneumoscan.web import schema
from pneumoscan.web.server.security import request_id

DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
FORM_PAGES = "pneumoscan.form_pages"
# The app's words, each with the next step, where Werkzeug would answer with its generic ones.
OUR_WORDS = {
    400: "the request could not be understood; go back, reload the page and try again",
    403: "you may not open this page; sign in with an account that may, or go back",
    404: "there is no such page: the result may have been deleted or the address mistyped; "
    "look for it in the history",
    405: "this address cannot be used that way (a form sent again, perhaps); go back and use the page's own "
    "buttons and links",
}


class InsufficientStorage(HTTPException):
    """507, which Werkzeug does not name: the disk holding the uploads is full."""

    code = 507
    description = "the server's storage is full"


def add_form_page(app: Flask, endpoint: str, render: Callable[[str, int], ResponseReturnValue]) -> None:
    """Errors of a POST to `endpoint` are shown on its form again (`render(message, status)`), not on
    an error page: a feature registers its form here, so this layer needs to know no feature."""
    app.extensions.setdefault(FORM_PAGES, {})[endpoint] = render


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.endpoint == "health.healthz"


def in_our_words(error: HTTPException) -> str:
    """The error's own message, or ours where it carries only Werkzeug's generic description."""
    if error.description and error.description != type(error).description:
        return error.description
    if isinstance(error, RequestEntityTooLarge) and current_app.config.get("MAX_CONTENT_LENGTH"):
        limit = current_app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
        return f"the upload is larger than the {limit:g} MB limit; choose fewer or smaller files, then retry"
    return OUR_WORDS.get(error.code or 500, error.description or error.name)


def http_error(error: HTTPException):
    """JSON for the API and the health check, a form page again for its POST, else an error page."""
    message = in_our_words(error)
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    form_page = current_app.extensions.get(FORM_PAGES, {}).get(request.endpoint)
    if wants_json():
        response = jsonify(error=message)
    elif form_page is not None and request.method == "POST":
        response = current_app.make_response(form_page(message, error.code or 500))
    else:
        response = current_app.make_response(render_template("error.html", error=error, message=message))
    response.status_code = error.code or 500
    response.headers.extend(headers)
    return response


def refused(refusal: Refused):
    """Every refusal no view caught, answered as the HTTP error of its status."""
    return http_error(default_exceptions[refusal.status](refusal.message))


def database_error(error: Exception):
    """A missing table or column is a schema behind the code (500, logged with the fix), not an outage."""
    if schema.is_mismatch(error):
        current_app.logger.error(
            "request %s: the database schema is behind the code (%s); run `%s`",
            request_id(),
            (str(getattr(error, "orig", error)).splitlines() or [""])[0],
            schema.UPGRADE_COMMAND,
        )
        message = f"the database needs upgrading; quote request id {request_id()} when reporting it"
        return http_error(InternalServerError(message))
    if isinstance(error, DATABASE_DOWN):
        return database_down(error)
    return unexpected(error)


def database_down(error: Exception):
    """503 rather than 500: the request was fine and will work once the database is back."""
    driver_error = getattr(error, "orig", None) or error
    current_app.logger.warning(
        "request %s: database unavailable: %s: %s",
        request_id(),
        type(driver_error).__name__,
        (str(driver_error).splitlines() or [""])[0],
    )
    message = "the database is unavailable; please try again in a moment"
    return http_error(ServiceUnavailable(message, retry_after=5))


def storage_error(error: OSError):
    """A full disk or quota is 507, with a message that says so; any other OSError is unexpected."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return unexpected(error)
    current_app.logger.error("request %s: storage full: %s", request_id(), error.strerror)
    message = "the server's storage is full; nothing was saved, please try again later"
    return http_error(InsufficientStorage(message))


def unexpected(error: Exception):
    """Anything else: logged with its traceback and request id, answered with the id only."""
    current_app.logger.exception("request %s failed", request_id())
    message = f"unexpected error; quote request id {request_id()} when reporting it"
    return http_error(InternalServerError(message))


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Refused, refused)
    for error_class in (*DATABASE_DOWN, ProgrammingError):
        app.register_error_handler(error_class, database_error)
    app.register_error_handler(OSError, storage_error)
    app.register_error_handler(Exception, unexpected)
