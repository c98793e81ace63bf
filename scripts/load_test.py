"""Load test: N clients x M uploads of real X-rays to gunicorn started from the Procfile.

Loopback only and bounded in requests and time. Passes when every upload got a 201 and every
201 left exactly one row and both of its files; exits non-zero otherwise. The server and the
clients are tests/procfile_harness.py's, which the tests and the benchmark use too. Needs only
the serving requirements; run it from the repository root:

    python -m scripts.load_test [--clients 8] [--uploads 25] [--max-seconds 300] [--slow-clients]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.procfile_harness import (
    REPO,
    procfile_command,
    procfile_server,
    pss_mb,
    report,
    request,
    rss_mb,
    run_load,
    slow_clients,
    upload,
    verify_stored,
    xray_paths,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=25, help="uploads per client")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop sending after this long")
    parser.add_argument("--workers", help="WEB_CONCURRENCY for the server (default: the Procfile's)")
    parser.add_argument("--procfile", type=Path, default=REPO / "Procfile", help="to compare other settings")
    parser.add_argument(
        "--slow-clients",
        action="store_true",
        help="only time /healthz plus an upload under 8 slow-body and 50 idle connections",
    )
    args = parser.parse_args(argv)
    if not 0 < args.clients * args.uploads <= 5000:
        parser.error("clients x uploads must be between 1 and 5000")

    paths = xray_paths(200)
    env = {"WEB_CONCURRENCY": args.workers} if args.workers else {}
    if args.slow_clients:
        with procfile_server(env, procfile=args.procfile) as server:
            upload(server.base_url, paths[0])
            timed = slow_clients(server.base_url, paths[1])
        print(
            f"8 slow-body + 50 idle connections: /healthz {timed.health_status} and upload "
            f"{timed.upload_status} in {timed.seconds:.2f} s (bar: 2 s)"
        )
        return 0 if timed.seconds <= 2 and (timed.health_status, timed.upload_status) == (200, 201) else 1
    with procfile_server(env, procfile=args.procfile) as server:
        print(f"server: {procfile_command(0, args.procfile).replace(':0 ', ':PORT ')}")
        master, workers = server.gunicorn_pids()
        result = run_load(server.base_url, paths, args.clients, args.uploads, args.max_seconds)
        print(report(result, args.clients))
        print(
            "worker RSS: "
            + ", ".join(f"{rss_mb(pid):.0f} MB" for pid in workers)
            + f"; whole server PSS: {sum(pss_mb(pid) for pid in [master, *workers]):.0f} MB"
        )
        problems = verify_stored(server.base_url, result.created)
        status, _, _ = request(f"{server.base_url}/healthz")
        if status != 200:
            problems.append(f"/healthz answered {status} after the load")
    for problem in problems[:20]:
        print(f"LOST: {problem}")
    complete = len(result.statuses) == args.clients * args.uploads
    print(f"stored: every 201 has one row and two files: {'yes' if not problems else 'NO'}")
    if not complete:
        print(f"stopped at the {args.max_seconds:.0f} s bound after {len(result.statuses)} uploads")
    return 0 if result.non_201 == 0 and not problems and complete else 1


if __name__ == "__main__":
    sys.exit(main())
