"""Benchmark on the machine it runs on: model, one worker end to end, load, memory, size.

Prints the time to decode a real X-ray, model-only ONNX Runtime latency and batch throughput,
a bare Keras Xception forward pass for comparison (TensorFlow is imported here, in a child
process, never when serving), API latency with one gunicorn worker started from the Procfile,
uploads/s with 8 clients and the Procfile's settings, resident memory per worker, import and
first-request time, the size of a fresh serving environment, the peak memory of a worker
answering each hostile file of the adversarial review (tests/attack_files.py), and a
health check plus an upload timed under 8 slow-body and 50 idle connections.

    python -m benchmarks.bench [--skip-keras] [--skip-venv-size] [--skip-load] [--skip-attacks]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pneumoscan.decode import decode_image
from pneumoscan.model_card import ModelCard
from tests import attack_files
from tests.procfile_harness import (
    REPO,
    percentile,
    procfile_server,
    report,
    rss_mb,
    run_load,
    slow_clients,
    upload,
    verify_stored,
    xray_paths,
)

MODEL_DIR = REPO / "model_weights"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def ms(seconds: list[float], q: float) -> str:
    return f"{1000 * percentile(seconds, q):.1f} ms"


def timed(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def onnx_model_path() -> Path:
    """The served model file, as named by the model card."""
    return MODEL_DIR / ModelCard.load(MODEL_DIR).model_file


def bench_decode(paths: list[Path], repeats: int = 200) -> None:
    """Bytes to grayscale pixels for a real X-ray, as every upload starts."""
    data = paths[0].read_bytes()
    decode_image(data)
    latencies = timed(lambda: decode_image(data), repeats)
    print(f"decode a {len(data) / 1e3:.0f} kB X-ray JPEG: p50 {ms(latencies, 50)}, p90 {ms(latencies, 90)}")


def bench_model(threads: int, repeats: int = 50, batch: int = 8) -> None:
    """The ONNX model alone, with the serving session settings: batch-1 latency and batched throughput."""
    from pneumoscan.inference import create_session, run_model

    path = onnx_model_path()
    session = create_session(path, threads)
    rng = np.random.default_rng(0)
    shape = tuple(session.get_inputs()[0].shape[1:])
    one = rng.uniform(-1, 1, (1, *shape)).astype(np.float32)
    many = rng.uniform(-1, 1, (batch, *shape)).astype(np.float32)
    timed(lambda: run_model(session, one), 5)
    latencies = timed(lambda: run_model(session, one), repeats)
    print(
        f"model only ({path.name}, {shape[0]} px, {path.stat().st_size / 1e6:.0f} MB, {threads} threads): "
        f"batch 1 p50 {ms(latencies, 50)}, p90 {ms(latencies, 90)}"
    )
    batches = timed(lambda: run_model(session, many), 5)
    print(f"model only, batch {batch}: {batch * 5 / sum(batches):.1f} images/s")


def keras_forward_p50(threads: int, repeats: int = 30) -> float:
    """p50 seconds of a bare Keras Xception forward pass (224 px, batch 1, tf.function).

    Runs in this process: call it through `--only-keras` in a child so TensorFlow's memory
    and threads do not touch the other measurements.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = tf.keras.applications.Xception(
        weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3)
    )
    forward = tf.function(lambda x: model(x, training=False))
    image = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32))
    timed(lambda: forward(image).numpy(), 5)
    return percentile(timed(lambda: forward(image).numpy(), repeats), 50)


def bench_keras(threads: int, runs: int = 3) -> float | None:
    """The bare Keras forward's p50, the fastest of `runs` child processes."""
    command = [sys.executable, "-m", "benchmarks.bench", "--only-keras", "--threads", str(threads)]
    timings = []
    for _ in range(runs):
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"keras: failed: {done.stderr.strip().splitlines()[-1:]}")
            return None
        timings.append(float(done.stdout.strip().splitlines()[-1]))
    seconds = min(timings)
    print(
        f"bare Keras Xception forward (tf.function, 224 px, batch 1, {threads} threads): "
        f"p50 {1000 * seconds:.1f} ms (fastest of {runs} runs)"
    )
    return seconds


def cli_seconds_per_image(paths: list[Path], runs: int = 3) -> float:
    """Seconds per image of `python -m pneumoscan predict` (decode, model, gate, Grad-CAM, CSV row):
    the wall time over all of `paths` minus that over the first alone, which is the start-up
    (imports, model load), divided by the images added; the fastest of `runs`."""

    def wall(files: list[Path]) -> float:
        started = time.perf_counter()
        command = [sys.executable, "-m", "pneumoscan", "predict", *map(str, files), "--csv", os.devnull]
        subprocess.run(command, cwd=REPO, capture_output=True, check=True)
        return time.perf_counter() - started

    return min((wall(paths) - wall(paths[:1])) / (len(paths) - 1) for _ in range(runs))


def bench_cli(paths: list[Path], keras_p50: float | None) -> None:
    per_image = cli_seconds_per_image(paths[:100])
    print(f"CLI predict, per image (100 images, fastest of 3): {1000 * per_image:.1f} ms")
    if keras_p50:
        print(f"CLI per image / bare Keras forward = {per_image / keras_p50:.3f} (bar: <= 0.15)")


def import_seconds() -> float:
    """Wall time of `import app` (builds the app) in a fresh interpreter, on a database the
    release step has brought to the code's schema."""
    code = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite",
            "UPLOAD_FOLDER": f"{tmp}/up",
            "SECRET_KEY": "bench",
        }
        subprocess.run(
            [str(Path(sys.executable).parent / "alembic"), "upgrade", "head"],
            cwd=REPO,
            env=env,
            capture_output=True,
            check=True,
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
    return float(done.stdout.strip().splitlines()[-1])


def bench_one_worker(paths: list[Path], keras_p50: float | None) -> None:
    """30 sequential uploads (after 5 warm-ups) to one worker started from the Procfile."""
    started = time.perf_counter()
    with procfile_server({"WEB_CONCURRENCY": "1"}) as server:
        healthy = time.perf_counter() - started
        _, workers = server.gunicorn_pids()
        rss_idle = rss_mb(workers[0])
        replies = [upload(server.base_url, path) for path in paths[:35]]
        rss_busy = rss_mb(workers[0])
        problems = verify_stored(server.base_url, [reply for status, reply, _ in replies if status == 201])
    first = replies[0][2]
    latencies = [seconds for _, _, seconds in replies[5:]]
    non_201 = sum(status != 201 for status, _, _ in replies)
    print(
        f"startup: `import app` {import_seconds():.2f} s; Procfile server healthy after {healthy:.2f} s; "
        f"first upload {1000 * first:.0f} ms"
    )
    print(
        f"one worker, 30 sequential uploads: p50 {ms(latencies, 50)}, p95 {ms(latencies, 95)} "
        f"(non-201: {non_201})"
    )
    print(f"one worker RSS: {rss_idle:.0f} MB after start, {rss_busy:.0f} MB after 35 uploads")
    if keras_p50:
        ratio = percentile(latencies, 50) / keras_p50
        print(f"upload p50 / bare Keras forward p50 = {ratio:.2f} (bar: <= 0.5)")
    if problems:
        print(f"storage problems: {problems[:5]}")


def bench_load(paths: list[Path], clients: int = 8, per_client: int = 25) -> None:
    """8 clients x 25 uploads with the Procfile's own settings."""
    with procfile_server() as server:
        _, workers = server.gunicorn_pids()
        result = run_load(server.base_url, paths, clients, per_client, max_seconds=300)
        rss = [rss_mb(pid) for pid in workers]
        problems = verify_stored(server.base_url, result.created)
    print(f"load with the Procfile settings ({len(workers)} workers):")
    print("  " + report(result, clients).replace("\n", "\n  "))
    print(f"  RSS per worker after the load: {', '.join(f'{mb:.0f} MB' for mb in rss)}")
    print(f"  lost or incomplete results: {len(problems)}")


def reset_peak_rss(pid: int) -> None:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def bench_attacks(paths: list[Path]) -> None:
    """Peak RSS of one Procfile worker answering each hostile upload, and its status."""
    gray = np.asarray(Image.open(paths[0]).convert("L"))
    files = {
        **attack_files.big_files(),
        "Deflated DICOM bomb": attack_files.deflated_dicom_bomb(),
        "DICOM, 2 frames, no count": attack_files.two_frames_without_count(),
        "JPEG with patient text": attack_files.jpeg_with_patient_text(gray),
        "PNG with patient text": attack_files.png_with_patient_text(gray),
    }
    with procfile_server({"WEB_CONCURRENCY": "1"}) as server:
        _, workers = server.gunicorn_pids()
        upload(server.base_url, paths[0])
        print(f"hostile uploads, one Procfile worker (RSS {rss_mb(workers[0]):.0f} MB after one upload):")
        for name, data in files.items():
            reset_peak_rss(workers[0])
            status, reply, seconds = upload(server.base_url, paths[0], data)
            print(
                f"  {name} ({len(data) / 1e6:.2f} MB): {status} in {seconds:.2f} s, "
                f"peak worker RSS {rss_mb(workers[0], 'VmHWM'):.0f} MB (bar: 350 MB)"
            )
    with procfile_server() as server:
        upload(server.base_url, paths[0])
        timed = [slow_clients(server.base_url, paths[1 + n]) for n in range(3)]
    runs = ", ".join(f"{t.seconds:.2f} s ({t.health_status}/{t.upload_status})" for t in timed)
    print(f"8 slow-body + 50 idle connections, Procfile settings: /healthz + upload in {runs} (bar: 2 s)")


def serving_env_size() -> None:
    """Install requirements.txt into a fresh venv and measure it, as a PaaS slug would hold it."""
    with tempfile.TemporaryDirectory(prefix="pneumoscan-venv-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                str(REPO / "requirements.txt"),
            ],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            raise RuntimeError(f"pip install -r requirements.txt failed:\n{install.stderr}")
        size = subprocess.run(["du", "-sh", str(venv)], capture_output=True, text=True, check=True)
        model = sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file()) / 1e6
    print(
        f"serving environment (fresh venv + requirements.txt): {size.stdout.split()[0]}; "
        f"model_weights/: {model:.0f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for the model-only runs")
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-venv-size", action="store_true")
    parser.add_argument("--skip-attacks", action="store_true")
    parser.add_argument("--only-keras", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only_keras:
        print(keras_forward_p50(args.threads))
        return 0

    print(f"machine: {machine()}")
    paths = xray_paths(200)
    bench_decode(paths)
    bench_model(args.threads)
    keras_p50 = None if args.skip_keras else bench_keras(args.threads)
    bench_cli(paths, keras_p50)
    bench_one_worker(paths, keras_p50)
    if not args.skip_load:
        bench_load(paths)
    if not args.skip_attacks:
        bench_attacks(paths)
    if not args.skip_venv_size:
        serving_env_size()
    return 0


if __name__ == "__main__":
    sys.exit(main())
