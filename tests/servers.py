"""Throw-away PostgreSQL, Redis and S3 (moto) servers on loopback ports, for the tests that need real ones.

Each is started in a temporary folder and stopped (folder removed) when its fixture ends.
`make test` installs Debian's postgresql and redis-server; without their binaries the tests
that need them skip. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, workdir: Path) -> None:
    """Stops a server started for the tests (killed if it will not stop) and removes its folder."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(workdir, ignore_errors=True)


def _pg_bin() -> Path | None:
    found = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1:]), None
    )
    return Path(found).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PostgresServer:
    """A running cluster; `new_database` hands out empty databases on it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._count = 0

    def new_database(self) -> str:
        """A fresh empty database's SQLAlchemy URL."""
        import psycopg

        self._count += 1
        name = f"pneumoscan_test_{self._count}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=pneumoscan dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://pneumoscan@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    pytest.importorskip("psycopg", reason="psycopg (in requirements.txt) is not installed")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; `make test` installs them")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
    workdir = Path(tempfile.mkdtemp(prefix="pneumoscan-pg-"))
    if os.geteuid() == 0:
        os.chown(workdir, server_user.pw_uid, server_user.pw_gid)
    data, port = workdir / "data", free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "pneumoscan", "-A", "trust", "--no-sync"]
    subprocess.run(_as_server_user([*initdb, "-E", "UTF8"]), check=True, capture_output=True)
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    start = [*pg_ctl, "-o", options, "-l", str(workdir / "log"), "-w", "-t", str(STARTUP_SECONDS), "start"]
    subprocess.run(_as_server_user(start), check=True, capture_output=True)
    try:
        yield PostgresServer(port)
    finally:
        subprocess.run(_as_server_user([*pg_ctl, "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A Redis server without persistence; yields its redis:// URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found; `make test` installs Debian's redis-server")
    redis = pytest.importorskip("redis", reason="the redis client (in requirements.txt) is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="pneumoscan-redis-"))
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with open(workdir / "log", "wb") as log:
        process = subprocess.Popen([binary, *options, "--dir", str(workdir)], stdout=log, stderr=log)
    url = f"redis://127.0.0.1:{port}"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start: {(workdir / 'log').read_text()}"
                    ) from None
                time.sleep(0.05)
            finally:
                client.close()
        yield url
    finally:
        _stop(process, workdir)


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """moto's standalone S3-protocol server (`moto_server`, a dev dependency) in its own process;
    yields its endpoint URL. Its buckets live in that process's memory and go when it stops."""
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if binary is None:
        pytest.skip("moto_server not found; `make test` installs moto[server] from requirements-dev.txt")
    workdir = Path(tempfile.mkdtemp(prefix="pneumoscan-moto-"))
    port = free_port()
    with open(workdir / "log", "wb") as log:
        process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_text = (workdir / "log").read_text()
                    raise RuntimeError(f"moto_server did not start: {log_text}") from None
                time.sleep(0.1)
        yield url
    finally:
        _stop(process, workdir)
