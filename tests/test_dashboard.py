"""The dashboard's figures (/dashboard and /api/v1/metrics) against independent computations, and
refusal counting."""

from __future__ import annotations

import io
import re
import threading
from datetime import UTC, date, datetime

import numpy as np
import pytest
from conftest import add_result
from sqlalchemy import func, select

from pneumoscan.metrics import wilson_interval
from pneumoscan.web.models import RefusalCount, Result

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture
def reviewed(app):
    """60 reviewed results of the served model judged with two thresholds, plus results that must
    not count: UNSURE at the latest review, unreviewed, and another model version's."""
    from pneumoscan.web.modelcache import predictor

    rng = np.random.default_rng(5)
    truth = np.r_[np.zeros(25, int), np.ones(35, int)]
    probabilities = np.clip(rng.normal(0.35 + 0.4 * truth, 0.2), 0.001, 0.999)
    thresholds = np.where(np.arange(60) < 30, 0.5, 0.62)
    with app.app_context():
        version = predictor().card.model_version
    for label, probability, threshold in zip(truth, probabilities, thresholds, strict=True):
        finding = "PNEUMONIA" if label else "NORMAL"
        # Some were first reviewed otherwise and corrected: only the latest version counts.
        findings = ("UNSURE", finding) if probability > 0.6 else (finding,)
        add_result(
            app,
            probability=float(probability),
            threshold=float(threshold),
            model_version=version,
            findings=findings,
        )
    add_result(app, probability=0.9, model_version=version, findings=("NORMAL", "UNSURE"))
    add_result(app, probability=0.1, model_version=version, findings=("UNSURE",))
    add_result(app, probability=0.8, model_version=version)
    add_result(app, probability=0.95, model_version="older-model", findings=("NORMAL",))
    return truth, probabilities, thresholds


def test_reviewed_figures_equal_an_independent_computation(app, reviewed):
    truth, probabilities, thresholds = reviewed
    metrics = app.test_client().get("/api/v1/metrics").get_json()
    r = metrics["reviewed"]
    predicted = probabilities >= thresholds
    tn, fp, fn, tp = sklearn_metrics.confusion_matrix(truth, predicted).ravel()
    assert r["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert (r["cases"], r["normal"], r["pneumonia"], r["unsure_left_out"]) == (60, 25, 35, 2)
    assert r["sensitivity"]["value"] == pytest.approx(sklearn_metrics.recall_score(truth, predicted))
    assert r["specificity"]["value"] == pytest.approx(tn / (tn + fp))
    assert r["ppv"]["value"] == pytest.approx(sklearn_metrics.precision_score(truth, predicted))
    assert r["npv"]["value"] == pytest.approx(tn / (tn + fn))
    assert r["sensitivity"]["cases"] == 35 and r["specificity"]["cases"] == 25
    assert r["ppv"]["cases"] == tp + fp and r["npv"]["cases"] == tn + fn
    assert r["sensitivity"]["interval_95"] == pytest.approx(list(wilson_interval(tp, tp + fn)))
    assert r["auc"]["value"] == pytest.approx(sklearn_metrics.roc_auc_score(truth, probabilities))
    low, high = r["auc"]["interval_95"]
    assert low < r["auc"]["value"] < high
    fpr, tpr, _ = sklearn_metrics.roc_curve(truth, probabilities, drop_intermediate=False)
    np.testing.assert_allclose([[p["fpr"], p["tpr"]] for p in r["roc"]], np.c_[fpr, tpr])
    assert r["small_sample"] is True and "25 reviewed normal" in r["warning"]
    # The same request again gives the same interval (fixed seed).
    assert app.test_client().get("/api/v1/metrics").get_json()["reviewed"]["auc"] == r["auc"]


def test_uploads_share_and_histogram(app, reviewed):
    truth, probabilities, thresholds = reviewed
    metrics = app.test_client().get("/api/v1/metrics").get_json()
    uploads = metrics["uploads"]
    everything = np.r_[probabilities, 0.9, 0.1, 0.8, 0.95]
    labels = np.r_[probabilities >= thresholds, True, False, True, True]
    assert uploads["total"] == 64 and len(uploads["per_day"]) == 30
    assert uploads["per_day"][-1] == {"day": datetime.now(UTC).date().isoformat(), "count": 64}
    assert sum(day["count"] for day in uploads["per_day"]) == 64
    assert uploads["share_pneumonia"] == pytest.approx(labels.mean())
    expected, _ = np.histogram(everything, bins=10, range=(0, 1))
    assert [b["count"] for b in uploads["probability_histogram"]] == expected.tolist()
    assert metrics["threshold"]["source"] == "model card"
    assert metrics["threshold"]["value"] == metrics["threshold"]["model_card"]
    assert set(metrics) == {
        "generated_at", "model_version", "threshold", "uploads", "refusals", "reviewed",
        "subtype_agreement", "drift",
    }  # fmt: skip


def test_subtype_agreement_counts_latest_reviews_confirming_the_models_subtype(app):
    from pneumoscan.web import db
    from pneumoscan.web.modelcache import predictor
    from pneumoscan.web.models import Review

    with app.app_context():
        version = predictor().card.model_version
    for estimated, confirmed, times in (
        ("VIRAL", "VIRAL", 3),
        ("BACTERIAL", "BACTERIAL", 2),
        ("BACTERIAL", "VIRAL", 1),
    ):
        for _ in range(times):
            add_result(
                app,
                label="PNEUMONIA",
                model_version=version,
                subtype=estimated,
                findings=("PNEUMONIA",),
                subtype_finding=confirmed,
            )
    # Not counted: a later version not assessing the subtype, no model subtype, another model, unreviewed.
    reassessed = add_result(
        app,
        label="PNEUMONIA",
        model_version=version,
        subtype="VIRAL",
        findings=("PNEUMONIA",),
        subtype_finding="BACTERIAL",
    )
    with app.app_context():
        db.session().add(Review(prediction_id=reassessed, version=2, finding="PNEUMONIA"))
        db.session().commit()
    add_result(
        app, label="PNEUMONIA", model_version=version, findings=("PNEUMONIA",), subtype_finding="VIRAL"
    )
    add_result(
        app,
        label="PNEUMONIA",
        model_version="older",
        subtype="VIRAL",
        findings=("PNEUMONIA",),
        subtype_finding="BACTERIAL",
    )
    add_result(app, label="PNEUMONIA", model_version=version, subtype="VIRAL")

    agreement = app.test_client().get("/api/v1/metrics").get_json()["subtype_agreement"]

    assert (agreement["model_version"], agreement["cases"], agreement["agreed"]) == (version, 6, 5)
    assert agreement["agreement"]["value"] == pytest.approx(5 / 6) and agreement["agreement"]["cases"] == 6
    assert agreement["agreement"]["interval_95"] == pytest.approx(list(wilson_interval(5, 6)))
    assert {(p["estimated"], p["confirmed"]): p["count"] for p in agreement["by_subtype"]} == {
        ("BACTERIAL", "BACTERIAL"): 2,
        ("BACTERIAL", "VIRAL"): 1,
        ("VIRAL", "BACTERIAL"): 0,
        ("VIRAL", "VIRAL"): 3,
    }
    page = app.test_client().get("/dashboard").text
    assert re.search(r'<dd id="figure-subtype-agreement">83\.3 %</dd>', page)
    assert 'id="subtype-agreement"' in page


def test_subtype_agreement_is_empty_without_confirmed_subtypes(app):
    agreement = app.test_client().get("/api/v1/metrics").get_json()["subtype_agreement"]

    assert (agreement["cases"], agreement["agreed"]) == (0, 0)
    assert agreement["agreement"] == {"value": None, "cases": 0, "interval_95": None}
    page = app.test_client().get("/dashboard").text
    assert '<dd id="figure-subtype-agreement">—</dd>' in page and 'id="subtype-agreement"' not in page


def test_old_uploads_fall_out_of_the_window(app):
    from pneumoscan.web import db
    from pneumoscan.web.monitoring.site_metrics import uploads

    for probability, created_at in (
        (0.9, datetime(2026, 10, 1, 12, tzinfo=UTC)),
        (0.2, datetime(2026, 10, 2, 12, tzinfo=UTC)),
        (0.3, datetime(2026, 10, 31, 23, 59, tzinfo=UTC)),
    ):
        add_result(app, probability=probability, model_version="v", created_at=created_at)
    with app.app_context():
        figures = uploads(db.session(), date(2026, 10, 31))
    assert figures["total"] == 2 and figures["share_pneumonia"] == 0.0
    assert figures["per_day"][0] == {"day": "2026-10-02", "count": 1}
    assert figures["per_day"][-1] == {"day": "2026-10-31", "count": 1}


def test_metrics_need_the_same_sign_in_as_the_rest_of_the_api(app, users):
    assert app.test_client().get("/api/v1/metrics").status_code == 401
    assert app.test_client().get("/dashboard").status_code == 302
    token = users.token(users.clinician)
    answer = app.test_client().get("/api/v1/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.get_json()["reviewed"]["cases"] == 0
    assert users.client(users.clinician).get("/dashboard").status_code == 200


def test_dashboard_page_shows_the_figures_and_charts(app, reviewed):
    page = app.test_client().get("/dashboard").get_data(as_text=True)
    figures = app.test_client().get("/api/v1/metrics").get_json()
    sensitivity = figures["reviewed"]["sensitivity"]
    assert f"{sensitivity['value'] * 100:.1f} %" in page
    assert f"{sensitivity['interval_95'][0] * 100:.1f} %" in page
    for chart in ("chart-uploads", "chart-probabilities", "chart-roc", "chart-drift"):
        assert re.search(f'<svg id="{chart}"[^>]* role="img" aria-labelledby="{chart}-title"', page), chart
    assert "Few cases:" in page and "style=" not in page
    assert page.count('class="bar"') >= 30 + 10


def _refuse(client, data: bytes) -> None:
    answer = client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), "patient-name.txt")})
    assert answer.status_code in (400, 415, 422), answer.get_json()


def test_refusals_are_counted_per_reason_and_day_and_nothing_is_kept(app, tmp_path):
    from pneumoscan.web import db

    client = app.test_client()
    _refuse(client, b"not an image at all")
    _refuse(client, b"also plain text")
    _refuse(client, b"")
    with app.app_context():
        session = db.session()
        rows = session.execute(select(RefusalCount.reason, RefusalCount.count, RefusalCount.day)).all()
        assert session.scalar(select(func.count()).select_from(Result)) == 0
    counts = {reason: count for reason, count, _ in rows}
    assert sorted(counts.values()) == [1, 2]
    assert {day for _, _, day in rows} == {datetime.now(UTC).date()}
    assert all("patient-name" not in reason for reason in counts)
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or not any(uploads.rglob("*"))
    refusals = client.get("/api/v1/metrics").get_json()["refusals"]
    assert refusals["total"] == 3
    assert refusals["by_reason"][0]["count"] == 2
    assert client.get("/dashboard").get_data(as_text=True).count('class="bar refusal"') == 2


def test_concurrent_refusals_lose_no_count(app):
    from pneumoscan.web import db
    from pneumoscan.web.results import refusals

    with app.app_context():
        engine = db.database().engine
        threads = [threading.Thread(target=refusals.count, args=(engine, "busy")) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert db.session().get(RefusalCount, (datetime.now(UTC).date(), "busy")).count == 12


def test_refusal_counting_on_postgresql(postgres, upgrade_database):
    pytest.importorskip("psycopg")
    from pneumoscan.web import db
    from pneumoscan.web.results import refusals

    url = postgres.new_database()
    upgrade_database(url)
    engine = db.make_engine(url)
    try:
        threads = [threading.Thread(target=refusals.count, args=(engine, "busy")) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refusals.count(engine, "other", date(2026, 1, 2))
        with engine.connect() as connection:
            rows = connection.execute(select(RefusalCount.reason, RefusalCount.count)).all()
    finally:
        engine.dispose()
    assert sorted(rows) == [("busy", 8), ("other", 1)]
