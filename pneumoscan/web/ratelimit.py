"""Per-client sliding-window limit on uploads (each costs a model run) and password posts.

State lives in the worker process: with N gunicorn workers a client can get up to N times
the limit. That is enough to stop a runaway script without needing Redis.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import wraps

from flask import Flask, current_app, request
from werkzeug.exceptions import TooManyRequests

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
EXTENSION = "pneumoscan.ratelimit"


def parse_rate(text: str) -> tuple[int, float] | None:
    """'30/minute' -> (30, 60.0); '' -> None (no limit)."""
    text = text.strip().lower()
    if not text:
        return None
    match = re.fullmatch(r"(\d+)\s*(?:/|per)\s*(second|minute|hour|day)s?", text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"RATE_LIMIT must look like '30/minute', got {text!r}")
    return int(match.group(1)), float(PERIODS[match.group(2)])


class SlidingWindowLimiter:
    """At most `limit` hits per client in any `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, client: str, now: float | None = None) -> float:
        """Record a hit; returns 0 if allowed, else seconds until the client may try again."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._hits) > 10_000:
                self._forget_idle(now)
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return hits[0] + self.window - now
            hits.append(now)
            return 0.0

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[client]


def init_app(app: Flask) -> None:
    rate = parse_rate(app.config.get("RATE_LIMIT") or "")
    app.extensions[EXTENSION] = SlidingWindowLimiter(*rate) if rate else None


def rate_limited(view: Callable) -> Callable:
    """Refuse POSTs with 429 and Retry-After once the client's budget is spent."""

    @wraps(view)
    def limited(*args, **kwargs):
        limiter: SlidingWindowLimiter | None = current_app.extensions.get(EXTENSION)
        if limiter is not None and request.method == "POST":
            wait = limiter.hit(request.remote_addr or "unknown")
            if wait > 0:
                raise TooManyRequests(
                    f"too many requests; try again in {math.ceil(wait)} s", retry_after=math.ceil(wait)
                )
        return view(*args, **kwargs)

    return limited
