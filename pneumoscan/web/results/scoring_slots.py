"""How many uploads a process scores at once, whatever its number of request threads."""

from __future__ import annotations

import threading

_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def scoring_slot(slots: int) -> threading.BoundedSemaphore:
    """At most `slots` uploads of a process are read into memory, decoded and estimated at once,
    whatever the number of request threads: the threads are there so slow clients cannot starve
    the others, and these steps are what cost memory (a waiting upload stays in werkzeug's
    temporary file)."""
    with _slots_lock:
        return _slots.setdefault(slots, threading.BoundedSemaphore(slots))
