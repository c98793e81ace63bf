"""The site threshold: proposed by the ROC policy from reviewed cases, applied by an admin to new
uploads (page, API and CLI), reset to the model card's, versioned and audited."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import add_result
from sqlalchemy import select

from pneumoscan.model_card import ModelCard
from pneumoscan.web.models import AuditEvent, Result, SiteThreshold
from tests.threshold_checks import policy_threshold, proposed_value

sklearn_metrics = pytest.importorskip("sklearn.metrics")
REPO = Path(__file__).resolve().parents[1]


def add_reviewed(app, normals, pneumonias, version=None) -> None:
    from pneumoscan.web.modelcache import predictor

    with app.app_context():
        card = predictor().card
    for finding, probabilities in (("NORMAL", normals), ("PNEUMONIA", pneumonias)):
        for probability in probabilities:
            add_result(
                app,
                probability=float(probability),
                threshold=card.threshold,
                model_version=version or card.model_version,
                findings=(finding,),
            )


def overlapping_cases(seed: int = 11, normal: int = 40, pneumonia: int = 45):
    rng = np.random.default_rng(seed)
    return rng.beta(2, 5, normal), rng.beta(5, 2, pneumonia)


def test_proposal_is_the_roc_policy_applied_to_the_reviewed_cases(app, users):
    normals, pneumonias = overlapping_cases()
    add_reviewed(app, normals, pneumonias)
    add_reviewed(app, [], [0.01] * 10, version="older-model")  # another model version: not counted
    from pneumoscan.web.modelcache import predictor

    with app.app_context():
        version = predictor().card.model_version
    # An UNSURE case and a case corrected to UNSURE are left out.
    add_result(app, probability=0.02, model_version=version, findings=("PNEUMONIA", "UNSURE"))
    add_result(app, probability=0.99, model_version=version, findings=("UNSURE",))
    labels = np.r_[np.zeros(normals.size, int), np.ones(pneumonias.size, int)]
    probabilities = np.r_[normals, pneumonias]
    expected = policy_threshold(labels, probabilities)

    page = users.client(users.admin).get("/admin/threshold").get_data(as_text=True)
    assert float(proposed_value(page)) == pytest.approx(expected, abs=1e-12)
    assert f"{expected:.4f}" in page and "40 normal, 45 pneumonia" in page
    predicted = probabilities >= expected
    sensitivity = sklearn_metrics.recall_score(labels, predicted)
    specificity = sklearn_metrics.recall_score(labels, predicted, pos_label=0)
    assert sensitivity >= 0.95
    assert f"sensitivity {sensitivity * 100:.1f} %, specificity {specificity * 100:.1f} %" in page
    fpr, tpr, _ = sklearn_metrics.roc_curve(labels, probabilities)
    assert specificity == pytest.approx(1 - fpr[tpr >= 0.95].min())


def test_29_reviewed_normals_propose_nothing(app, users, csrf_token):
    normals, pneumonias = overlapping_cases(normal=29, pneumonia=40)
    add_reviewed(app, normals, pneumonias)
    admin = users.client(users.admin)
    page = admin.get("/admin/threshold").get_data(as_text=True)
    assert 'name="threshold"' not in page
    assert "1 more reviewed normal case needed" in page
    token = csrf_token(admin, "/account")
    refused = admin.post("/admin/threshold/apply", data={"csrf_token": token, "threshold": "0.5"})
    assert refused.status_code == 409
    with app.app_context():
        from pneumoscan.web import db

        assert db.session().scalars(select(SiteThreshold)).all() == []


def test_only_admins_reach_the_site_threshold(app, users, csrf_token):
    clinician = users.client(users.clinician)
    assert clinician.get("/admin/threshold").status_code == 403
    token = csrf_token(clinician, "/account")
    assert clinician.post("/admin/threshold/reset", data={"csrf_token": token}).status_code == 403
    assert users.client(users.admin).get("/admin/threshold").status_code == 200
    assert app.test_client().get("/admin/threshold").status_code == 302


def test_open_demo_has_no_admin_to_set_a_threshold(client):
    assert client.get("/admin/threshold").status_code == 403


def _upload(client, path: Path) -> dict:
    with open(path, "rb") as handle:
        answer = client.post("/api/v1/predictions", data={"file": (handle, path.name)})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def cases_moving_the_threshold_past(probability: float, card_threshold: float):
    """Reviewed cases whose ROC-policy threshold lies on the other side of `probability` than
    the card's, so a new upload with that probability changes label."""
    if probability < card_threshold:
        return np.linspace(0.05, 0.2, 35) * probability, np.linspace(0.3, 0.6, 40) * probability
    room = 1 - probability
    return probability + np.linspace(0.1, 0.4, 35) * room, probability + np.linspace(0.5, 0.9, 40) * room


def test_applied_threshold_judges_new_uploads_then_reset_restores_the_cards(
    app, users, csrf_token, xray_paths, tmp_path
):
    admin = users.client(users.admin)
    card = ModelCard.load(Path(app.config["MODEL_DIR"]))
    first = _upload(admin, xray_paths[0])
    assert first["threshold"] == card.threshold
    normals, pneumonias = cases_moving_the_threshold_past(first["probability"], card.threshold)
    add_reviewed(app, normals, pneumonias)
    labels = np.r_[np.zeros(normals.size, int), np.ones(pneumonias.size, int)]
    expected = policy_threshold(labels, np.r_[normals, pneumonias])

    page = admin.get("/admin/threshold").get_data(as_text=True)
    token = csrf_token(admin, "/admin/threshold")
    applied = admin.post(
        "/admin/threshold/apply", data={"csrf_token": token, "threshold": proposed_value(page)}
    )
    assert applied.status_code == 303
    second = _upload(admin, xray_paths[0])
    assert second["probability"] == first["probability"]
    assert second["threshold"] == pytest.approx(expected, abs=1e-12)
    assert second["label"] != first["label"]
    assert second["label"] == ("PNEUMONIA" if second["probability"] >= expected else "NORMAL")
    assert (first["threshold_source"], second["threshold_source"]) == ("model card", "site")
    assert "threshold set for this site" in admin.get(f"/predictions/{second['id']}").get_data(as_text=True)
    metrics = admin.get("/api/v1/metrics").get_json()["threshold"]
    assert metrics["source"] == "site" and metrics["value"] == second["threshold"]
    assert "this site's" in admin.get("/dashboard").get_data(as_text=True)

    from pneumoscan.web import db

    with app.app_context():
        session = db.session()
        change = session.scalars(select(SiteThreshold)).one()
        stored = session.get(Result, second["id"])
        assert stored.threshold == change.threshold and stored.site_threshold_id == change.id
        assert session.get(Result, first["id"]).site_threshold_id is None
        assert (change.previous_threshold, change.reviewed_normal, change.reviewed_pneumonia) == (
            card.threshold,
            35,
            40,
        )
        assert change.set_by.email == users.admin.email and change.model_version == card.model_version
        assert change.interval_low <= change.interval_high and change.sensitivity >= 0.95
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "site-threshold")).one()
        assert event.user_id == users.admin.id and event.target_id == str(change.id)
        assert f"{expected:.4f}" in event.detail

    # The command line, pointed at the app's database, judges with the same threshold.
    out = tmp_path / "cli.csv"
    result = subprocess.run(
        [sys.executable, "-m", "pneumoscan", "predict", str(xray_paths[0]), "--csv", str(out)]
        + ["--database-url", app.config["DATABASE_URL"]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    row = next(csv.DictReader(io.StringIO(out.read_text())))
    assert float(row["threshold"]) == second["threshold"] and row["label"] == second["label"]
    assert "site threshold" in result.stderr

    token = csrf_token(admin, "/admin/threshold")
    assert admin.post("/admin/threshold/reset", data={"csrf_token": token}).status_code == 303
    third = _upload(admin, xray_paths[0])
    assert (third["threshold"], third["label"]) == (card.threshold, first["label"])
    history = admin.get("/admin/threshold").get_data(as_text=True)
    assert history.count("<tr>") == 3 and "reset to the card" in history
    with app.app_context():
        changes = db.session().scalars(select(SiteThreshold).order_by(SiteThreshold.id)).all()
        assert [c.threshold for c in changes] == [pytest.approx(expected), None]
        assert changes[1].previous_threshold == changes[0].threshold
        assert db.session().get(Result, third["id"]).site_threshold_id is None


def test_a_stale_proposal_is_not_applied(app, users, csrf_token):
    normals, pneumonias = overlapping_cases()
    add_reviewed(app, normals, pneumonias)
    admin = users.client(users.admin)
    token = csrf_token(admin, "/admin/threshold")
    answer = admin.post("/admin/threshold/apply", data={"csrf_token": token, "threshold": "0.123"})
    assert answer.status_code == 303
    assert "changed since" in admin.get("/admin/threshold").get_data(as_text=True)
    from pneumoscan.web import db

    with app.app_context():
        assert db.session().scalars(select(SiteThreshold)).all() == []


def test_cli_without_a_database_uses_the_cards_threshold(model_dir, xray_paths, monkeypatch, capsys):
    from pneumoscan.__main__ import main

    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["predict", str(xray_paths[0])]) == 0
    captured = capsys.readouterr()
    assert f"threshold {ModelCard.load(model_dir).threshold!r}: the model card's" in captured.err
