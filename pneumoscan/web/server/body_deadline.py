"""A request body must arrive within BODY_TIMEOUT seconds, so a client trickling one byte at a
time cannot hold a request thread for minutes.

Each read of the body checks the deadline and, under gunicorn, gives the socket only the
time that is left, so one blocking read cannot outlast it either. A late body gets a 408.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.exceptions import RequestTimeout

LAST_READ_SECONDS = 0.01


class DeadlineInput:
    """A WSGI input stream whose reads fail with 408 once the deadline has passed."""

    def __init__(self, stream: Any, deadline: float, sock: socket.socket | None) -> None:
        self.stream = stream
        self.deadline = deadline
        self.sock = sock

    def _guarded(self, read: Callable, *args: Any) -> bytes:
        remaining = self.deadline - time.monotonic()
        if self.sock is not None:
            self.sock.settimeout(max(remaining, LAST_READ_SECONDS))
        if remaining <= 0:
            raise RequestTimeout("the request body arrived too slowly")
        try:
            return read(*args)
        except TimeoutError as exc:
            raise RequestTimeout("the request body arrived too slowly") from exc

    def read(self, *args: Any) -> bytes:
        return self._guarded(self.stream.read, *args)

    def readline(self, *args: Any) -> bytes:
        return self._guarded(self.stream.readline, *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._guarded(self.stream.readlines, *args)

    def __iter__(self):
        return iter(self.readline, b"")


def init_app(app: Flask) -> None:
    timeout = app.config["BODY_TIMEOUT"]
    if not timeout:
        return
    inner = app.wsgi_app

    def with_deadline(environ: dict, start_response: Callable):
        environ["wsgi.input"] = DeadlineInput(
            environ["wsgi.input"], time.monotonic() + timeout, environ.get("gunicorn.socket")
        )
        return inner(environ, start_response)

    app.wsgi_app = with_deadline
