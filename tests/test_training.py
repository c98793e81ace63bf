"""`python train.py` end to end on a few dozen real X-rays: split, cache, fine-tune, export,
threshold, gate, model card. Small and short, but the same code path as the full run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pneumoscan.training.augment import augment

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_training_folder(tmp_path, xray_dir):
    """20 patients a class (symbolic links, nothing copied)."""
    for name in ("NORMAL", "PNEUMONIA"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for path in sorted((xray_dir / name).glob("*.jpeg"))[:24]:
            (tmp_path / "train" / name / path.name).symlink_to(path)
    return tmp_path / "train"


def test_train_py_runs_end_to_end_and_publishes_a_servable_model(tiny_training_folder, tmp_path):
    pytest.importorskip("tensorflow", reason="training needs TensorFlow (make test installs it)")
    from pneumoscan.training.xception import packaged_imagenet_model

    try:
        base = str(packaged_imagenet_model())
    except FileNotFoundError:
        base = "none"
    out, build = tmp_path / "model", tmp_path / "build"
    result = subprocess.run(
        [sys.executable, "train.py", "--data", str(tiny_training_folder), "--out", str(out), "--build-dir", str(build),
         "--base-weights", base, "--views", "2", "--epochs", "1", "--head-epochs", "2", "--val-fraction", "0.3",
         "--cache-layer", "add_10"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    assert 0 < card["threshold"] < 1
    assert card["split"]["val"]["images"] > 0 and card["split"]["train"]["images"] > 0
    assert card["weight_variants"]["shipped"] in ("int8", "float16")
    assert card["gradcam_vs_float32_gradienttape"]["images"] > 0
    for picture in ("roc.png", "confusion_matrix.png", "calibration.png", "training_curves.png"):
        assert (build / "report" / picture).stat().st_size > 1000

    from pneumoscan.decode import decode_image
    from pneumoscan.inference import Predictor

    xray = next(tiny_training_folder.glob("PNEUMONIA/*.jpeg"))
    prediction = Predictor.load(out, threads=1).predict(decode_image(xray.read_bytes()), check_xray=False)
    assert 0 <= prediction.probability <= 1 and prediction.model_version == card["model_version"]


def test_augmentation_keeps_shape_and_is_reproducible():
    gray = np.random.default_rng(0).integers(0, 256, (224, 224), dtype=np.uint8)
    first = augment(gray, np.random.default_rng(5))
    assert first.shape == gray.shape and first.dtype == np.uint8
    assert np.array_equal(first, augment(gray, np.random.default_rng(5)))
    assert not np.array_equal(first, augment(gray, np.random.default_rng(6)))
