"""The committed model through the serving path, on real X-rays it was not trained on."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pneumoscan.dataset import list_labelled_images, split_by_patient
from pneumoscan.decode import decode_image
from pneumoscan.inference import CARD_FILE, Predictor
from pneumoscan.metrics import roc_auc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.load(model_dir, threads=2)


@pytest.fixture(scope="module")
def validation_sample(xray_dir):
    """Every 8th image of the patient-level validation split that train.py holds out (seed 42)."""
    _, val = split_by_patient(list_labelled_images(xray_dir), 0.15, 42)
    return val[::8]


def test_model_card_describes_the_served_model(model_dir, predictor):
    card = json.loads((model_dir / CARD_FILE).read_text())
    assert 0 < card["threshold"] < 1 and card["threshold"] == predictor.threshold
    assert card["model_version"] == predictor.model_version
    assert card["class_names"] == ["NORMAL", "PNEUMONIA"]
    assert (model_dir / card["model_file"]).stat().st_size <= 50 * 2**20
    for key in ("auc", "accuracy", "sensitivity", "specificity", "brier", "ece", "confusion_matrix"):
        assert key in card["validation"]


def test_held_out_patients_are_classified_well(predictor, validation_sample):
    labels = np.array([item.label for item in validation_sample])
    results = [predictor.predict(decode_image(item.path.read_bytes())) for item in validation_sample]
    probabilities = np.array([r.probability for r in results])
    assert roc_auc(labels, probabilities) >= 0.97
    assert np.mean((probabilities >= predictor.threshold) == labels) >= 0.9
    for result in results:
        assert result.label == ("PNEUMONIA" if result.probability >= result.threshold else "NORMAL")
        assert result.cam.shape == (7, 7) and 0 <= result.cam.min() and result.cam.max() <= 1
        assert result.inference_ms > 0


def test_same_bytes_give_the_same_answer(predictor, xray_paths):
    data = xray_paths[0].read_bytes()
    first, second = (predictor.predict(decode_image(data)) for _ in range(2))
    assert first.probability == second.probability
    assert np.array_equal(first.cam, second.cam)


def test_serving_never_imports_tensorflow(tmp_path, model_dir):
    code = (
        "import sys, app, pneumoscan.__main__\n"
        "from pneumoscan.web.modelcache import load_predictor\n"
        f"load_predictor({str(model_dir)!r}, 1)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'\n"
    )
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "UPLOAD_FOLDER": str(tmp_path / "up"),
           "SECRET_KEY": "x"}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=120)
