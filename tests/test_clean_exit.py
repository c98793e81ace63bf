"""Workers exit cleanly: gunicorn's master imports the worker class (and so the app's package)
before it forks, and a worker forked from a process that had imported ONNX Runtime aborts with
`std::system_error` (or hangs) as it exits; so that import must not bring in ONNX Runtime."""

from __future__ import annotations

import subprocess
import sys


def test_the_worker_class_import_leaves_onnx_runtime_unloaded():
    probe = "import sys, pneumoscan.web.worker; print('onnxruntime' in sys.modules)"
    answer = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert answer.stdout.strip() == "False"
