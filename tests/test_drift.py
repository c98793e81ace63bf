"""Drift: the reference's limits, one week compared, and weeks of stored uploads flagged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from conftest import add_result

from pneumoscan.drift import READINGS, WEEK_SIZES, compare_week, load_reference, reference_from_readings
from pneumoscan.model_card import ModelCard

scipy_stats = pytest.importorskip("scipy.stats")


def test_limits_are_what_means_of_that_many_reference_images_reach():
    rng = np.random.default_rng(0)
    readings = rng.normal([50, 6, 0.001, 0.8, 0.85, 2.0], [9, 1.4, 0.003, 0.15, 0.08, 1.0], (4000, 6))
    reference = reference_from_readings(readings, "synthetic", "v1")
    two_sided = scipy_stats.norm.ppf(1 - (1 - reference["quantile"]) / 2)
    for size in (20, 100):
        for name in READINGS:
            assert reference["limits"][str(size)][name] == pytest.approx(two_sided / np.sqrt(size), rel=0.12)
    assert [reference["limits"][str(size)]["contrast"] for size in WEEK_SIZES] == sorted(
        (reference["limits"][str(size)]["contrast"] for size in WEEK_SIZES), reverse=True
    )
    assert reference["mean"]["contrast"] == pytest.approx(readings[:, 0].mean())


def _readings(reference: dict, n: int, rng, shift: dict | None = None) -> list[dict]:
    """n readings drawn like the reference's, with some readings moved by `shift` spreads."""
    return [
        {
            name: reference["mean"][name]
            + reference["spread"][name] * (rng.normal() + (shift or {}).get(name, 0.0))
            for name in READINGS
        }
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def reference(model_dir):
    found = load_reference(model_dir)
    if found is None:
        pytest.skip("the committed model ships no drift_reference.json")
    return found


def test_the_committed_reference_belongs_to_the_committed_model(model_dir, reference):
    assert reference["model_version"] == ModelCard.load(model_dir).model_version
    assert reference["images"] == ModelCard.load(model_dir).extra["split"]["val"]["images"]
    # The pooled-feature distance is about 2 on X-rays like the training ones, by construction.
    assert 1.5 < reference["mean"]["feature_distance"] < 2.5


def test_a_shifted_week_is_flagged_and_a_typical_one_is_not(reference):
    rng = np.random.default_rng(7)
    typical = compare_week(_readings(reference, 40, rng), reference)
    shifted = compare_week(_readings(reference, 40, rng, {"contrast": 1.5}), reference)
    few = compare_week(_readings(reference, 4, rng, {"contrast": 5}), reference)
    assert typical["flagged"] is False and typical["beyond"] == []
    assert shifted["flagged"] is True and shifted["beyond"] == ["contrast"]
    assert shifted["shifts"]["contrast"] == pytest.approx(1.5, abs=0.5)
    assert shifted["limits"] == reference["limits"]["20"]
    assert few["flagged"] is None and few["uploads"] == 4


def test_dashboard_weeks_of_stored_uploads(app, reference):
    from pneumoscan.web import db
    from pneumoscan.web.modelcache import predictor
    from pneumoscan.web.monitoring.site_metrics import weekly_drift

    rng = np.random.default_rng(3)
    today = date(2026, 11, 18)  # a Wednesday in ISO week 47
    with app.app_context():
        card = predictor().card
    weeks = {  # ISO week start -> readings
        date(2026, 11, 16): _readings(reference, 30, rng, {"feature_distance": 2.0}),
        date(2026, 11, 9): _readings(reference, 30, rng),
        date(2026, 11, 2): _readings(reference, 3, rng),
    }
    for monday, readings in weeks.items():
        for i, reading in enumerate(readings):
            created = datetime.combine(monday + timedelta(days=i % 3), datetime.min.time(), UTC)
            add_result(
                app,
                probability=0.5,
                model_version=card.model_version,
                created_at=created,
                gate_reading=reading,
            )
    other = _readings(reference, 1, rng)[0]
    add_result(
        app,
        probability=0.5,
        model_version="another-model",
        created_at=datetime(2026, 11, 17, tzinfo=UTC),
        gate_reading=other,
    )
    with app.app_context():
        drift = weekly_drift(db.session(), card.model_version, app.config["MODEL_DIR"], today)
    by_week = {week["week"]: week for week in drift["per_week"]}
    assert len(drift["per_week"]) == 12 and drift["per_week"][-1]["week"] == "2026-W47"
    assert drift["per_week"][0]["starts"] == "2026-08-31"
    assert by_week["2026-W47"]["uploads"] == 30 and by_week["2026-W47"]["flagged"] is True
    assert by_week["2026-W47"]["beyond"] == ["feature_distance"]
    assert by_week["2026-W47"]["feature_distance"] == pytest.approx(
        np.mean([r["feature_distance"] for r in weeks[date(2026, 11, 16)]])
    )
    assert by_week["2026-W46"]["flagged"] is False
    assert by_week["2026-W45"]["uploads"] == 3 and by_week["2026-W45"]["flagged"] is None
    assert by_week["2026-W44"]["uploads"] == 0
    assert drift["flagged_weeks"] == ["2026-W47"]
