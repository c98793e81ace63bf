"""`pip install .`: the wheel carries the web app's templates and static files and a `pneumoscan`
command equal to `python -m pneumoscan`, but not the model, which MODEL_DIR names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

WEB = REPO_ROOT / "pneumoscan" / "web"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The package built as pip builds it (uv build, a dev dependency, in an isolated environment)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.skip("uv not found; `make test` installs it from requirements-dev.txt")
    out = tmp_path_factory.mktemp("wheel")
    command = [uv, "build", "--wheel", "--native-tls", "--quiet", "--out-dir", str(out), str(REPO_ROOT)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    with zipfile.ZipFile(next(out.glob("*.whl"))) as built:
        yield built


def test_the_wheel_carries_every_template_and_static_file_but_no_model(wheel):
    names = set(wheel.namelist())
    shipped = [
        path for folder in ("templates", "static") for path in (WEB / folder).rglob("*") if path.is_file()
    ]
    assert shipped and {path.relative_to(REPO_ROOT).as_posix() for path in shipped} <= names
    assert "pneumoscan/web/migrations/env.py" in names
    assert not any(name.endswith(".onnx") or name.startswith("model_weights/") for name in names)
    assert sum(info.file_size for info in wheel.infolist()) < 5_000_000


def test_the_console_script_is_python_m_pneumoscan(wheel):
    entry_points = next(name for name in wheel.namelist() if name.endswith("entry_points.txt"))
    assert "pneumoscan = pneumoscan.__main__:main" in wheel.read(entry_points).decode()


def test_the_top_level_folders_link_into_the_package():
    assert (REPO_ROOT / "templates").resolve() == WEB / "templates"
    assert (REPO_ROOT / "static").resolve() == WEB / "static"


def test_without_a_model_the_command_says_to_set_model_dir(tmp_path):
    env = {**os.environ, "MODEL_DIR": str(tmp_path / "none")}
    ran = subprocess.run(
        [sys.executable, "-m", "pneumoscan", "predict", "x.png"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 2 and "set MODEL_DIR or --model-dir" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_with_model_dir_it_scores_from_another_folder(tmp_path, model_dir, xray_paths):
    ran = subprocess.run(
        [sys.executable, "-m", "pneumoscan", "predict", str(xray_paths[0])],
        cwd=tmp_path,
        env={**os.environ, "MODEL_DIR": str(model_dir), "PYTHONPATH": str(REPO_ROOT), "ORT_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[1].split(",")[3] in ("NORMAL", "PNEUMONIA")
