"""The committed model through the serving path, on real X-rays it was not trained on."""

import hashlib
import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from pneumoscan.batch import FILES_PER_CALL, estimate_files
from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.inference import Predictor, calibrated_probability, create_session, has_vnni, run_model
from pneumoscan.metrics import roc_auc
from pneumoscan.model_card import Calibration, ModelCard
from pneumoscan.png import encode_png
from pneumoscan.preprocess import to_model_input

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.load(model_dir, threads=2)


@pytest.fixture(scope="module")
def validation_sample(validation_items):
    """Every third image of the committed model's validation split."""
    return validation_items[::3]


def test_card_names_the_model_file_it_sits_beside(model_dir):
    card = ModelCard.load(model_dir)
    digest = hashlib.sha256((model_dir / card.model_file).read_bytes()).hexdigest()
    assert card.model_sha256 == digest and card.model_version.endswith(digest[:8])
    session = create_session(model_dir / card.model_file, threads=1)
    size = card.preprocessing.input_size
    assert session.get_inputs()[0].shape[1:] == [size, size, 3]
    assert [output.name for output in session.get_outputs()] == ["logit", "activation"]
    with np.load(model_dir / card.head_file) as head:
        assert head["dense_kernel"].size == session.get_outputs()[1].shape[-1]


def test_served_logit_is_the_head_applied_to_the_served_activation(predictor, model_dir, xray_paths):
    """Recomputed from the ONNX activation and the head's weights: the logit, and the probability
    as the identity calibration of the committed card serves it."""
    with np.load(model_dir / predictor.card.head_file) as head:
        kernel, bias = head["dense_kernel"].reshape(-1), float(head["dense_bias"].reshape(-1)[0])
    for path in xray_paths[:4]:
        decoded = decode_image(path.read_bytes())
        estimate = predictor.predict(decoded, check_xray=False)
        activation = run_model(
            predictor.session, to_model_input(decoded.gray, predictor.card.preprocessing)[None]
        ).activation
        assert estimate.logit == pytest.approx(
            float(activation[0].mean(axis=(0, 1)) @ kernel) + bias, abs=1e-3
        )
        assert estimate.probability == pytest.approx(
            calibrated_probability(estimate.logit, predictor.card.calibration), abs=1e-12
        )


def test_calibration_maps_the_logit_and_the_threshold_applies_to_its_result(model_copy, xray_paths):
    card = ModelCard.load(model_copy)
    replace(card, calibration=Calibration("platt", scale=0.5, bias=-1.0), threshold=0.3).write(model_copy)
    calibrated = Predictor.load(model_copy, threads=1)
    for path in xray_paths[:4]:
        estimate = calibrated.predict(decode_image(path.read_bytes()), check_xray=False)
        assert estimate.probability == pytest.approx(
            1 / (1 + math.exp(-(0.5 * estimate.logit - 1.0))), abs=1e-12
        )
        assert estimate.label == ("PNEUMONIA" if estimate.probability >= 0.3 else "NORMAL")
        assert estimate.threshold == 0.3


def test_held_out_patients_are_classified_well(predictor, validation_sample):
    labels = np.array([item.label for item in validation_sample])
    results = [predictor.predict(decode_image(item.path.read_bytes())) for item in validation_sample]
    probabilities = np.array([r.probability for r in results])
    grid = tuple(predictor.session.get_outputs()[1].shape[1:3])
    assert roc_auc(labels, probabilities) >= 0.97
    assert np.mean((probabilities >= predictor.threshold) == labels) >= 0.9
    for result in results:
        assert result.label == ("PNEUMONIA" if result.probability >= result.threshold else "NORMAL")
        assert result.cam.shape == grid and result.cam.min() >= 0 and result.cam.max() <= 1
        assert result.inference_ms > 0


def test_same_bytes_give_the_same_answer(predictor, xray_paths):
    data = xray_paths[0].read_bytes()
    first, second = (predictor.predict(decode_image(data)) for _ in range(2))
    assert first.probability == second.probability
    assert np.array_equal(first.cam, second.cam)


def test_images_scored_together_get_exactly_their_own_answers(predictor, xray_paths):
    """A folder goes through in session calls of several images; each answer must be the one the
    image gets alone, and a refused image must not disturb its neighbours."""
    images = [decode_image(path.read_bytes()) for path in xray_paths[:5]]
    images.insert(2, decode_image(encode_png(np.full((200, 200), 17, np.uint8))))
    together = predictor.predict_many(images)
    assert isinstance(together[2], ImageRejected)
    for image, result in zip(images[:2] + images[3:], together[:2] + together[3:], strict=True):
        alone = predictor.predict(image)
        assert (result.logit, result.probability) == (alone.logit, alone.probability)
        assert (result.label, result.viral_probability) == (alone.label, alone.viral_probability)
        assert np.array_equal(result.cam, alone.cam)
        assert result.inference_ms > 0


def test_files_keep_their_order_and_errors_across_session_calls(predictor, xray_paths, tmp_path):
    blank, missing = tmp_path / "blank.png", tmp_path / "missing.jpeg"
    blank.write_bytes(encode_png(np.full((200, 200), 17, np.uint8)))
    paths = [*xray_paths[:4], missing, *xray_paths[4:8], blank, *xray_paths[8:11]]
    assert len(paths) > FILES_PER_CALL + 1
    results = list(estimate_files(predictor, paths))
    assert [result.path for result in results] == paths
    for path, result in zip(paths, results, strict=True):
        if path in (blank, missing):
            assert result.estimate is None and result.error
            assert ("chest X-ray" in result.error) == (path == blank)
        else:
            assert result.error is None
            assert result.estimate.logit == predictor.predict(decode_image(path.read_bytes())).logit


def test_serving_never_imports_tensorflow(tmp_path, model_dir):
    code = (
        "import sys, app, pneumoscan.__main__\n"
        "from pneumoscan.web.modelcache import load_predictor\n"
        f"load_predictor({str(model_dir)!r}, 1)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "UPLOAD_FOLDER": str(tmp_path / "up"),
        "SECRET_KEY": "x",
    }
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO, env=env, check=True, timeout=120
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=120)


def test_served_graph_computes_what_its_quantization_defines_on_this_cpu(predictor, model_dir, xray_paths):
    """With graph optimisations off, ONNX Runtime runs the int8 graph's quantize/dequantize pairs
    around float operators: the arithmetic the quantization defines, on any CPU. The optimised
    session must agree with it; on x86 CPUs without VNNI the fast uint8 x int8 kernels saturate
    and moved logits by several units before the session asked for exact arithmetic there; on
    VNNI CPUs the session keeps the fast kernels, which must be exact too."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = ort.InferenceSession(
        str(model_dir / predictor.card.model_file), options, providers=["CPUExecutionProvider"]
    )
    inputs = np.stack(
        [
            to_model_input(decode_image(path.read_bytes()).gray, predictor.card.preprocessing)
            for path in xray_paths[:16]
        ]
    )
    served = run_model(predictor.session, inputs)
    exact = run_model(reference, inputs)
    assert np.abs(served.logit - exact.logit).max() < 0.3
    assert np.abs(served.activation - exact.activation).max() < 0.5


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 avx512f avx512bw avx512_vnni", True),
        ("fpu sse2 avx2 avx_vnni", True),
        ("fpu sse2 avx2 fma", False),
        ("fpu sse2 avx2 avx512f avx512bw", False),
    ],
)
def test_vnni_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert has_vnni(cpuinfo) is expected


def test_vnni_is_not_assumed_where_the_cpu_cannot_be_read(tmp_path):
    """Another OS, or no /proc: the exact uint8 x uint8 kernel is kept."""
    assert has_vnni(tmp_path / "missing") is False
