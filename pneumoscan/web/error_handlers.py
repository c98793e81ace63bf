"""Every failure becomes a short message (HTML or JSON) with a status; stack traces stay in the log."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from pneumoscan.web import schema
from pneumoscan.web.forms import UploadForm
from pneumoscan.web.pages import render_upload_form
from pneumoscan.web.security import request_id

DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
UPLOAD_ENDPOINTS = {"pages.index"}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.endpoint == "pages.healthz"


def http_error(error: HTTPException):
    """JSON for the API and the health check, the upload form again for uploads, else a page."""
    message = error.description or error.name
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    if wants_json():
        response = jsonify(error=message)
    elif request.endpoint in UPLOAD_ENDPOINTS and request.method == "POST":
        response = current_app.make_response(
            render_upload_form(UploadForm(formdata=None), message, error.code or 500)
        )
    else:
        response = current_app.make_response(render_template("error.html", error=error, message=message))
    response.status_code = error.code or 500
    response.headers.extend(headers)
    return response


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


def unexpected(error: Exception):
    """Anything else: logged with its traceback and request id, answered with the id only."""
    current_app.logger.exception("request %s failed", request_id())
    message = f"unexpected error; quote request id {request_id()} when reporting it"
    return http_error(InternalServerError(message))


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    for error_class in (*DATABASE_DOWN, ProgrammingError):
        app.register_error_handler(error_class, database_error)
    app.register_error_handler(Exception, unexpected)
