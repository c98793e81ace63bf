"""One loaded model per worker process, shared by every app built in it.

Loaded on first use rather than when the app is built, so tests can build many apps cheaply
and no ONNX Runtime session (with its thread pool) is created in a process that later forks;
the pid in the cache key keeps a forked worker from using its parent's. The first request of
each worker (or its first /healthz) pays the load.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flask import current_app

from pneumoscan.inference import Predictor

_lock = threading.Lock()
_predictors: dict[tuple[int, str, int | None], Predictor] = {}


def load_predictor(model_dir: str | os.PathLike, threads: int | None) -> Predictor:
    """The cached Predictor for this process, model folder and thread count; loads it once."""
    key = (os.getpid(), str(Path(model_dir).resolve()), threads)
    with _lock:
        if key not in _predictors:
            _predictors[key] = Predictor.load(Path(model_dir), threads=threads)
        return _predictors[key]


def predictor() -> Predictor:
    """The model for the current app."""
    return load_predictor(current_app.config["MODEL_DIR"], current_app.config["ORT_THREADS"])
