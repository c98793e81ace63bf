"""The one place for the server's settings: the Procfile and `make run` both start gunicorn with it.

It reads PORT (with HOST) and WEB_CONCURRENCY through the app's settings, so a bad value stops
gunicorn here with its one line, before any worker starts. The Procfile also binds 0.0.0.0:$PORT
on the command line, as a platform expects to see. No `preload_app`: each worker loads its own
ONNX Runtime session, which must not be shared across a fork.
"""

from pneumoscan.web.config import load_settings, stop_on_bad_setting

with stop_on_bad_setting():
    settings = load_settings()

bind = [f"{settings.HOST}:{settings.PORT}"]
workers = settings.WEB_CONCURRENCY
worker_class = "pneumoscan.web.worker.PollingThreadWorker"
threads = 16
timeout = 60
graceful_timeout = 30
max_requests = 1000
max_requests_jitter = 100
worker_tmp_dir = "/dev/shm"
control_socket_disable = True
accesslog = "-"
logger_class = "pneumoscan.web.gunicorn_logger.Logger"
