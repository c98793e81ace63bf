"""gunicorn's gthread worker, except that a new connection waits for its first bytes in the
worker's poller rather than in a request thread.

Stock gthread hands every accepted connection to a thread, which waits up to 5 s for data
before giving it back: 50 connections that send nothing hold every thread for seconds and
real requests queue behind them. Here they cost a poller entry and are closed after the
keep-alive timeout; threads go only to connections with bytes to read. The Procfile names it
with `--worker-class pneumoscan.web.worker.PollingThreadWorker`.
"""

from __future__ import annotations

import errno
import selectors
import time
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

_RETRY = (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK)


class PollingThreadWorker(ThreadWorker):
    def accept(self, listener) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in _RETRY:
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client, address, listener.getsockname())
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))
