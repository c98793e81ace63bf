"""The heatmap's faithfulness measures: pixel order, deletion and insertion on the served model."""

import numpy as np
import pytest

from pneumoscan.decode import decode_image
from pneumoscan.inference import Predictor
from pneumoscan.preprocess import resize_to_input
from pneumoscan.training.faithfulness import (
    STEPS,
    area,
    beats,
    centre_blob,
    deletion_insertion,
    paired_comparison,
    pixel_order,
    probabilities,
)


def test_pixel_order_starts_where_the_map_is_hottest():
    cam = np.zeros((8, 8), np.float32)
    cam[0, 7] = 1.0
    first = pixel_order(cam)[: 224 * 224 // 64]
    rows, cols = np.unravel_index(first, (224, 224))
    assert rows.max() < 56 and cols.min() > 224 - 56


def test_centre_blob_peaks_in_the_middle_and_ignores_the_image():
    blob = centre_blob((8, 8))
    assert blob.shape == (8, 8) and blob[3:5, 3:5].min() == blob.max()
    assert np.array_equal(blob, centre_blob((8, 8)))


def test_deletion_ends_at_the_fill_and_insertion_starts_from_it(model_dir, xray_dir):
    """On the real model: the curves run between the X-ray's and the fill's served probabilities,
    whatever the order, and their areas lie between those ends' extremes."""
    predictor = Predictor.load(model_dir, threads=1)
    path = sorted((xray_dir / "PNEUMONIA").glob("*.jpeg"))[0]
    gray = resize_to_input(decode_image(path.read_bytes()).gray)
    fill = np.full_like(gray, 120)
    image_p, fill_p = probabilities(predictor, np.stack([gray, fill]))
    for cam in (np.random.default_rng(0).random((8, 8)), centre_blob((8, 8))):
        deletion, insertion = deletion_insertion(predictor, gray, fill, pixel_order(cam))
        assert len(deletion) == len(insertion) == STEPS + 1
        assert deletion[0] == pytest.approx(image_p) and deletion[-1] == pytest.approx(fill_p)
        assert insertion[0] == pytest.approx(fill_p) and insertion[-1] == pytest.approx(image_p)
        for curve in (deletion, insertion):
            assert curve.min() <= area(curve) <= curve.max()


def test_area_of_a_straight_line_is_its_mean():
    assert area(np.linspace(1.0, 0.0, STEPS + 1)) == pytest.approx(0.5)
    assert area(np.ones(STEPS + 1)) == pytest.approx(1.0)


def test_paired_comparison_and_the_two_standard_error_rule():
    rng = np.random.default_rng(0)
    served = np.linspace(0.5, 0.6, 40)
    worse = served + 0.1 + rng.normal(0, 0.01, 40)
    comparison = paired_comparison(served, worse, seed=0)
    assert comparison["mean_difference"] == pytest.approx(0.1, abs=0.01)
    assert 0 < comparison["standard_error"] < 0.01
    low, high = comparison["interval_95"]
    assert low < comparison["mean_difference"] < high
    assert beats(comparison, lower_is_better=True) and not beats(comparison, lower_is_better=False)
    noise = paired_comparison(served, served + rng.normal(0, 0.05, 40), seed=0)
    assert not (beats(noise, lower_is_better=True) and beats(noise, lower_is_better=False))
