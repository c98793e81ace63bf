"""Grad-CAM: NumPy from the served activation vs a TensorFlow GradientTape Grad-CAM, and the overlay."""

import cv2
import numpy as np
import pytest

from pneumoscan.decode import decode_image
from pneumoscan.gradcam import OVERLAY_MAX_SIDE, gradcam, overlay_heatmap
from pneumoscan.inference import Predictor, run_model
from pneumoscan.png import encode_png
from pneumoscan.preprocess import to_model_input


def gradienttape_gradcam(tf, activation: np.ndarray, kernel: np.ndarray, bias: float):
    """keras-io's Grad-CAM recipe on the model's head (global average pooling -> dense logit)."""
    conv_output = tf.constant(activation[None])
    with tf.GradientTape() as tape:
        tape.watch(conv_output)
        logit = tf.reduce_mean(conv_output, axis=(1, 2)) @ tf.constant(kernel[:, None]) + bias
        pneumonia = logit[:, 0]
    grads = tape.gradient(pneumonia, conv_output)
    pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.nn.relu(conv_output[0] @ pooled_grads[..., None])[..., 0]
    peak = float(tf.reduce_max(heatmap))
    return (heatmap / peak if peak > 0 else heatmap).numpy(), float(pneumonia[0])


def test_numpy_gradcam_matches_gradienttape_on_real_xrays(model_dir, xray_paths):
    tf = pytest.importorskip(
        "tensorflow", reason="the GradientTape reference needs TensorFlow (make test installs it)"
    )
    predictor = Predictor.load(model_dir, threads=1)
    with np.load(model_dir / predictor.card.head_file) as head:
        bias = float(head["dense_bias"].reshape(-1)[0])
    for path in xray_paths[:12]:
        outputs = run_model(
            predictor.session,
            to_model_input(decode_image(path.read_bytes()).gray, predictor.card.preprocessing)[None],
        )
        reference, logit = gradienttape_gradcam(tf, outputs.activation[0], predictor.dense_kernel, bias)
        served = gradcam(outputs.activation[0], predictor.dense_kernel)
        assert np.abs(served - reference).max() <= 0.01, path.name
        assert logit == pytest.approx(float(outputs.logit[0]), abs=1e-3), (
            "head weights are not the served model's"
        )


def test_gradcam_is_normalised_and_follows_the_weights():
    activation = np.zeros((7, 7, 4), np.float32)
    activation[1, 2, 0] = 3.0
    activation[5, 5, 1] = 1.0
    cam = gradcam(activation, np.array([1.0, -2.0, 0.5, 0.0]))
    assert cam.shape == (7, 7) and cam.max() == pytest.approx(1.0)
    assert cam[1, 2] == pytest.approx(1.0) and cam[5, 5] == 0.0
    assert not gradcam(np.zeros((7, 7, 4), np.float32), np.ones(4)).any()


def test_overlay_keeps_the_aspect_ratio_and_caps_large_images():
    cam = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    small = overlay_heatmap(np.zeros((300, 200), np.uint8), cam, 1.0)
    assert small.shape == (300, 200, 3) and small.dtype == np.uint8
    large = overlay_heatmap(np.zeros((2500, 3000), np.uint8), cam, 1.0)
    assert large.shape == (round(2500 * OVERLAY_MAX_SIDE / 3000), OVERLAY_MAX_SIDE, 3)
    decoded = cv2.imdecode(np.frombuffer(encode_png(small), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, small)


def test_overlay_is_hottest_where_the_map_is():
    cam = np.zeros((7, 7), np.float32)
    cam[0, 6] = 1.0
    overlay = overlay_heatmap(np.full((224, 224), 128, np.uint8), cam, 1.0).astype(int)
    redness = overlay[:, :, 2] - overlay[:, :, 0]
    assert redness[:32, -32:].mean() > redness[-32:, :32].mean() + 50


def test_overlay_strength_follows_the_probability_not_the_maps_own_peak():
    """The same map, normalised to its peak: a confident NORMAL leaves the X-ray almost as it is,
    a confident PNEUMONIA colours the region, and where the map is zero nothing is coloured."""
    gray = np.full((224, 224), 128, np.uint8)
    cam = np.zeros((8, 8), np.float32)
    cam[:4, :4] = 1.0

    def change(strength: float) -> np.ndarray:
        overlay = overlay_heatmap(gray, cam, strength).astype(int)
        return np.abs(overlay - gray[:, :, None]).sum(axis=2)

    normal, pneumonia = change(0.02), change(0.98)
    assert normal[:80, :80].mean() < 6 and pneumonia[:80, :80].mean() > 100
    assert pneumonia[-80:, -80:].max() == 0
