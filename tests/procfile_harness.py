"""gunicorn started from the Procfile on a loopback port with a throw-away database and upload
folder, and the clients that load it: shared by the tests, the load test (scripts/load_test.py)
and the benchmark. Loopback only and bounded in requests and time; needs only the serving
requirements."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pneumoscan.dataset import CLASS_NAMES, training_folder

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def xray_paths(count: int) -> list[Path]:
    """`count` real X-rays, alternating NORMAL and PNEUMONIA, in a fixed order."""
    root = training_folder()
    classes = [sorted((root / name).glob("*.jpeg")) for name in CLASS_NAMES]
    if not all(classes):
        raise FileNotFoundError(f"no X-rays under {root}; set PNEUMOSCAN_DATA")
    picked = [path for pair in zip(*classes, strict=False) for path in pair]
    return picked[:count]


def procfile_command(port: int, procfile: Path = REPO / "Procfile", process: str = "web") -> str:
    """A Procfile command (`web:` by default) with $PORT set, bound to loopback instead of every interface."""
    for line in procfile.read_text().splitlines():
        if line.startswith(f"{process}:"):
            command = line.removeprefix(f"{process}:").strip()
            return command.replace("0.0.0.0:", f"{LOOPBACK}:").replace("$PORT", str(port))
    raise ValueError(f"no {process}: line in {procfile}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 60.0,
) -> tuple[int, dict, bytes]:
    """One HTTP request to a loopback server: (status, headers, body)."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to send traffic off loopback: {url}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def multipart(
    field_name: str, filename: str, data: bytes, content_type: str = "image/jpeg"
) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field: (body, Content-Type header)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(base_url: str, path: Path, data: bytes | None = None) -> tuple[int, dict, float]:
    """POST one X-ray to the API: (status, JSON reply, seconds taken)."""
    body, content_type = multipart("file", path.name, data if data is not None else path.read_bytes())
    started = time.perf_counter()
    status, _, raw = request(f"{base_url}/api/v1/predictions", "POST", body, {"Content-Type": content_type})
    elapsed = time.perf_counter() - started
    try:
        reply = json.loads(raw)
    except ValueError:
        reply = {"error": raw[:200].decode(errors="replace")}
    return status, reply, elapsed


@dataclass
class Server:
    """A gunicorn started from the Procfile; `pid` is the process the Procfile's shell became."""

    base_url: str
    process: subprocess.Popen
    workdir: Path
    log_path: Path

    def gunicorn_pids(self) -> tuple[int, list[int]]:
        """(master pid, worker pids), found through /proc."""
        children = _children_map()
        master = self.process.pid
        if "gunicorn" not in _cmdline(master):
            master = next(pid for pid in children.get(master, []) if "gunicorn" in _cmdline(pid))
        return master, sorted(children.get(master, []))

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    return children


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of one process from /proc/<pid>/status: now (VmRSS) or at its peak (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no {field} for pid {pid}")


def pss_mb(pid: int) -> float:
    """Proportional set size: shared library pages split between the processes that map them,
    so the PSS of master and workers adds up to what the server really holds."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no Pss for pid {pid}")


def wait_healthy(base_url: str, process: subprocess.Popen, timeout: float = 120.0) -> float:
    """Poll /healthz until it answers 200; returns seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before it was healthy")
        with contextlib.suppress(OSError):
            if request(f"{base_url}/healthz", timeout=5)[0] == 200:
                return time.perf_counter() - started
        time.sleep(0.1)
    raise TimeoutError(f"{base_url}/healthz not healthy after {timeout:.0f} s")


@contextlib.contextmanager
def procfile_server(
    env: dict[str, str] | None = None, timeout: float = 120.0, procfile: Path = REPO / "Procfile"
) -> Iterator[Server]:
    """Run the Procfile's release step, then its web command on a free loopback port.

    The database and upload folder are throw-away ones unless `env` names others.
    """
    with tempfile.TemporaryDirectory(prefix="pneumoscan-load-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        server_env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{workdir / 'load.sqlite'}",
            "UPLOAD_FOLDER": str(workdir / "uploads"),
            "SECRET_KEY": secrets.token_hex(16),
            "RATE_LIMIT": "",
            # No accounts on this throw-away database: open, as `make run` is on a laptop.
            "OPEN_DEMO": "true",
            **(env or {}),
        }
        log_path = workdir / "server.log"
        subprocess.run(
            ["bash", "-c", procfile_command(port, procfile, "release")],
            cwd=REPO,
            env=server_env,
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["bash", "-c", procfile_command(port, procfile)],
                cwd=REPO,
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(f"http://{LOOPBACK}:{port}", process, workdir, log_path)
        try:
            wait_healthy(server.base_url, process, timeout)
            yield server
        except BaseException:
            print(server.log_tail(), file=sys.stderr)
            raise
        finally:
            stop_server(process)


def stop_server(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class LoadResult:
    """What the clients saw: one entry per upload attempted."""

    seconds: float = 0.0
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    created: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.statuses) / self.seconds if self.seconds else 0.0

    @property
    def non_201(self) -> int:
        return sum(status != 201 for status in self.statuses)

    @property
    def server_errors(self) -> int:
        return sum(status >= 500 for status in self.statuses)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def run_load(
    base_url: str, paths: list[Path], clients: int, uploads_per_client: int, max_seconds: float
) -> LoadResult:
    """`clients` threads each upload `uploads_per_client` X-rays, stopping early at `max_seconds`."""
    payloads = [(path, path.read_bytes()) for path in paths]
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.perf_counter() + max_seconds

    def client(index: int) -> None:
        for n in range(uploads_per_client):
            if time.perf_counter() > deadline:
                return
            path, data = payloads[(index * uploads_per_client + n) % len(payloads)]
            try:
                status, reply, elapsed = upload(base_url, path, data)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # A connection dropped, a reply cut short or half-sent JSON: the upload failed.
                status, reply, elapsed = 0, {"error": f"{type(exc).__name__}: {exc}"}, 0.0
            with lock:
                result.statuses.append(status)
                if status == 201:
                    result.latencies.append(elapsed)
                    result.created.append(reply)
                else:
                    result.errors.append(f"{path.name}: {status} {reply.get('error', reply)}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def verify_stored(
    base_url: str, created: list[dict], rows_before: int = 0, unacknowledged: int = 0
) -> list[str]:
    """Every 201 has exactly one row (list API) and its record and both files answer 200.

    `unacknowledged` failed uploads may also have a (complete) row: a worker killed after the
    commit but before its reply stores a result the client never heard about."""
    problems: list[str] = []
    listed: list[str] = []
    total = None
    offset = 0
    while True:
        status, _, raw = request(f"{base_url}/api/v1/predictions?limit=100&offset={offset}")
        if status != 200:
            return [f"list API answered {status}"]
        page = json.loads(raw)
        total = page["total"]
        listed += [item["id"] for item in page["items"]]
        offset += len(page["items"])
        if not page["items"] or offset >= total:
            break
    expected = rows_before + len(created)
    if not expected <= total <= expected + unacknowledged:
        problems.append(f"list total is {total}, expected {expected} (+ up to {unacknowledged})")
    for reply in created:
        if listed.count(reply["id"]) != 1:
            problems.append(f"{reply['id']} listed {listed.count(reply['id'])} times")
        status, _, raw = request(f"{base_url}/api/v1/predictions/{reply['id']}")
        if status != 200 or json.loads(raw).get("id") != reply["id"]:
            problems.append(f"GET {reply['id']} answered {status}")
        for key, content_type in (("image_url", "image/"), ("heatmap_url", "image/png")):
            status, headers, body = request(base_url + urlsplit(reply[key]).path)
            if status != 200 or not body or not headers.get("content-type", "").startswith(content_type):
                problems.append(f"{key} of {reply['id']} answered {status} {headers.get('content-type')}")
    return problems


@dataclass
class SlowClientResult:
    """A health check and a real upload timed while hostile connections hold the server."""

    health_status: int
    upload_status: int
    seconds: float


def slow_clients(
    base_url: str, path: Path, slow: int = 8, idle: int = 50, trickle_every: float = 0.5, settle: float = 1.0
) -> SlowClientResult:
    """`slow` clients send an upload's headers and then one body byte every `trickle_every` s,
    `idle` clients connect and send nothing; then /healthz and one real upload are timed.
    Loopback only; every hostile connection is closed on return."""
    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"refusing to send traffic off loopback: {base_url}")
    address = (parts.hostname, parts.port)
    stop = threading.Event()
    held: list[socket.socket] = []

    def trickle() -> None:
        while not stop.wait(trickle_every):
            for sock in held[:slow]:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x")

    head = (
        f"POST /api/v1/predictions HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 1000000\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
    ).encode()
    trickler = threading.Thread(target=trickle, daemon=True)
    try:
        for _ in range(slow):
            held.append(socket.create_connection(address, timeout=5))
            held[-1].sendall(head)
        for _ in range(idle):
            held.append(socket.create_connection(address, timeout=5))
        trickler.start()
        time.sleep(settle)
        started = time.perf_counter()
        try:
            health_status = request(f"{base_url}/healthz", timeout=30)[0]
            upload_status = upload(base_url, path)[0]
        except TimeoutError:
            health_status = upload_status = 0
        return SlowClientResult(health_status, upload_status, time.perf_counter() - started)
    finally:
        stop.set()
        for sock in held:
            sock.close()
        if trickler.is_alive():
            trickler.join()


def report(result: LoadResult, clients: int) -> str:
    lines = [
        f"uploads: {len(result.statuses)} by {clients} clients in {result.seconds:.1f} s "
        f"-> {result.throughput:.1f} uploads/s",
        f"non-201: {result.non_201} (5xx: {result.server_errors})",
    ]
    if result.latencies:
        lines.append(
            f"latency of 201s: p50 {1000 * percentile(result.latencies, 50):.0f} ms, "
            f"p95 {1000 * percentile(result.latencies, 95):.0f} ms"
        )
    return "\n".join(lines + [f"  {error}" for error in result.errors[:10]])
