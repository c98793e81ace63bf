"""What a log line looks like: text (the default) or, with LOG_FORMAT=json, one JSON object a line.

A JSON line has time, level, logger, message and the request id (of the request being served,
else "-"), so a PaaS log drain can find every line of a request a user quotes. In JSON mode
the process's own stdout and stderr are also captured, so whatever a native library or an
uncaught traceback writes there becomes JSON lines too. Nothing here logs a request's body,
query string or headers other than X-Request-ID.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TextIO

from flask import has_request_context
from pythonjsonlogger.json import JsonFormatter

from pneumoscan.web.server.security import request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"
RENAMED = {"levelname": "level", "name": "logger"}
NATIVE_LOGGER = "native"


class RequestIdFilter(logging.Filter):
    """Adds `request_id`: the one a log call passed, else the current request's, else "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id() if has_request_context() else "-"
        return True


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        # "time": ISO 8601 in UTC with microseconds, which log drains sort and filter on.
        return JsonFormatter(JSON_FIELDS, rename_fields=RENAMED, timestamp="time")
    return logging.Formatter(TEXT_FORMAT)


def handler(log_format: str, stream: TextIO) -> logging.Handler:
    """A stream handler in the chosen format that knows the request id."""
    made = logging.StreamHandler(stream)
    made.setFormatter(formatter(log_format))
    made.addFilter(RequestIdFilter())
    return made


def _relay(source: int, log: logging.Logger) -> None:
    with os.fdopen(source, "r", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.strip():
                log.info(line.rstrip("\n"))


def capture_process_output() -> TextIO:
    """Point fds 1 and 2 at a pipe whose lines are logged (as JSON); returns the real stdout.

    Forked workers inherit the pipe, so this runs once, in the process that starts them.
    Handlers must write to the returned stream, or their own lines would come back as input.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    real = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    native = logging.getLogger(NATIVE_LOGGER)
    native.propagate = False
    native.setLevel(logging.INFO)
    native.addHandler(handler("json", real))
    threading.Thread(target=_relay, args=(read_end, native), name="log-relay", daemon=True).start()
    return real


def configure(log_format: str, stream: TextIO | None = None) -> None:
    """Log INFO and up to `stream` (stderr) in the format, unless logging is already set up."""
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(handler(log_format, stream or sys.stderr))
    root.setLevel(logging.INFO)
