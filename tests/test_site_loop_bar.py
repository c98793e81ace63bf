"""The review loop's bar, end to end on held-out X-rays: upload 80 through the API, review each with its
true label, and /api/v1/metrics reports the sensitivity and specificity of the API's own answers;
the site-threshold page proposes the ROC policy's threshold of those cases, and applying it
changes the label of a new upload accordingly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pneumoscan.dataset import external_folder
from pneumoscan.decode import decode_image
from pneumoscan.inference import Predictor
from pneumoscan.model_card import CLASS_NAMES
from tests.threshold_checks import policy_threshold, proposed_value

PER_CLASS = 40


@pytest.fixture(scope="module")
def held_out() -> dict[str, list[Path]]:
    folder = external_folder()
    found = {name: sorted((folder / name).glob("*.jpeg")) for name in CLASS_NAMES}
    if any(len(paths) <= PER_CLASS for paths in found.values()):
        pytest.skip(f"held-out X-rays not found at {folder}; set PNEUMOSCAN_DATA to the data folder")
    return found


def test_reviewed_uploads_give_the_metrics_and_the_site_threshold(
    app, users, csrf_token, held_out, model_dir
):
    from pneumoscan.web import db
    from pneumoscan.web.models import Review

    api = {"Authorization": f"Bearer {users.token(users.clinician)}"}
    client = app.test_client()
    answers, truth = [], []
    for label, name in enumerate(CLASS_NAMES):
        for path in held_out[name][:PER_CLASS]:
            with open(path, "rb") as handle:
                reply = client.post("/api/v1/predictions", data={"file": (handle, path.name)}, headers=api)
            assert reply.status_code == 201, (path, reply.get_json())
            answers.append(reply.get_json())
            truth.append(label)
    with app.app_context():
        session = db.session()
        for answer, label in zip(answers, truth, strict=True):
            finding = CLASS_NAMES[label]
            session.add(
                Review(prediction_id=answer["id"], version=1, finding=finding, reviewer_id=users.clinician.id)
            )
        session.commit()

    truth = np.array(truth)
    probabilities = np.array([a["probability"] for a in answers])
    flagged = np.array([a["label"] == "PNEUMONIA" for a in answers])
    assert (flagged == (probabilities >= np.array([a["threshold"] for a in answers]))).all()
    metrics = client.get("/api/v1/metrics", headers=api).get_json()
    reviewed = metrics["reviewed"]
    assert reviewed["cases"] == 2 * PER_CLASS and not reviewed["small_sample"]
    assert reviewed["sensitivity"]["value"] == pytest.approx(flagged[truth == 1].mean())
    assert reviewed["specificity"]["value"] == pytest.approx((~flagged[truth == 0]).mean())
    assert reviewed["sensitivity"]["cases"] == PER_CLASS == reviewed["specificity"]["cases"]
    assert metrics["uploads"]["total"] == 2 * PER_CLASS
    dashboard = users.client(users.clinician).get("/dashboard").get_data(as_text=True)
    assert (
        f"{reviewed['sensitivity']['value'] * 100:.1f} %" in dashboard and '<svg id="chart-roc"' in dashboard
    )

    admin = users.client(users.admin)
    page = admin.get("/admin/threshold").get_data(as_text=True)
    proposed = float(proposed_value(page))
    assert proposed == pytest.approx(policy_threshold(truth, probabilities), abs=1e-12)
    card_threshold = metrics["threshold"]["model_card"]
    low, high = sorted((proposed, card_threshold))

    # A further held-out X-ray whose probability lies between the two thresholds changes label.
    predictor = Predictor.load(model_dir, threads=1)
    remaining = [p for name in CLASS_NAMES for p in held_out[name][PER_CLASS:]]
    between = next(
        (p for p in remaining if low <= predictor.predict(decode_image(p.read_bytes())).probability < high),
        None,
    )
    if between is None:
        pytest.skip(f"no further held-out X-ray scores between {low:.4f} and {high:.4f}")
    token = csrf_token(admin, "/admin/threshold")
    applied = admin.post("/admin/threshold/apply", data={"csrf_token": token, "threshold": repr(proposed)})
    assert applied.status_code == 303
    with open(between, "rb") as handle:
        new = client.post(
            "/api/v1/predictions", data={"file": (handle, between.name)}, headers=api
        ).get_json()
    assert new["threshold"] == proposed
    assert new["label"] == ("PNEUMONIA" if new["probability"] >= proposed else "NORMAL")
    assert new["label"] != ("PNEUMONIA" if new["probability"] >= card_threshold else "NORMAL")
    assert client.get("/api/v1/metrics", headers=api).get_json()["threshold"]["value"] == proposed
