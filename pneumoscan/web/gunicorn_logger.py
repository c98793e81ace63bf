"""gunicorn's logger, in the app's LOG_FORMAT: with json, its own lines (start, workers,
shutdown), the access log and the app's are JSON objects, and so is anything else the processes
write to stdout or stderr. gunicorn.conf.py names it as `logger_class`.

An access line has method, path (no query string: it may carry a case reference), status,
duration_ms and the request id the app returned in X-Request-ID.
"""

from __future__ import annotations

import logging

from gunicorn import glogging

from pneumoscan.web.config import load_settings
from pneumoscan.web.server import log_format

_captured: dict[str, object] = {}


class Logger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.json = load_settings().LOG_FORMAT == "json"
        if not self.json:
            return
        if "stream" not in _captured:
            _captured["stream"] = log_format.capture_process_output()
        stream = _captured["stream"]
        for log in (self.error_log, self.access_log):
            for found in log.handlers:
                if isinstance(found, logging.StreamHandler) and not isinstance(found, logging.FileHandler):
                    found.setStream(stream)
                found.setFormatter(log_format.formatter("json"))
                found.addFilter(log_format.RequestIdFilter())
        log_format.configure("json", stream)

    def access(self, resp, req, environ, request_time) -> None:
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), "-")
        fields = {
            "method": req.method,
            "path": req.path,
            "status": resp.status_code,
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": request_id,
        }
        self.access_log.info("%s %s %s", req.method, req.path, resp.status_code, extra=fields)
