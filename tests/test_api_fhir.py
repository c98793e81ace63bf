"""The FHIR R4 DiagnosticReport of a result: valid against the R4B models, served as
application/fhir+json, its status following the review, no patient identity beyond the case
reference, and the same access and audit as the rest of the API."""

from __future__ import annotations

import json

import pytest
from conftest import add_result
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation
from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent, Result, Review
from tests.openapi_conformance import conforming

UNKNOWN = "00000000-0000-4000-8000-000000000000"
MODELS = {"Device": Device, "Media": Media, "Observation": Observation}


@pytest.fixture(autouse=True)
def responses_conform(monkeypatch):
    """Every API answer a test here receives fits the OpenAPI document."""
    yield from conforming(monkeypatch)


def fhir_report(client, prediction_id: str, **kwargs) -> dict:
    """The report, checked to be a valid R4 DiagnosticReport served as FHIR JSON."""
    answer = client.get(f"/api/v1/predictions/{prediction_id}/fhir", **kwargs)
    assert answer.status_code == 200
    assert answer.mimetype == "application/fhir+json"
    report = json.loads(answer.get_data())
    DiagnosticReport.model_validate(report)
    for resource in report["contained"]:
        MODELS[resource["resourceType"]].model_validate(resource)
    return report


def contained(report: dict, resource_id: str) -> dict:
    return next(resource for resource in report["contained"] if resource["id"] == resource_id)


def review(app, prediction_id: str, *findings: str, subtype_finding: str | None = None) -> None:
    with app.app_context():
        session = db.session()
        for version, finding in enumerate(findings, start=1):
            session.add(
                Review(
                    prediction_id=prediction_id,
                    version=version,
                    finding=finding,
                    subtype_finding=subtype_finding,
                )
            )
        session.commit()


def test_an_unreviewed_result_is_a_preliminary_chest_xray_report(app, client):
    prediction_id = add_result(
        app, probability=0.83, threshold=0.41, model_version="xception-7", case_reference="STUDY-0042"
    )

    report = fhir_report(client, prediction_id)

    assert report["resourceType"] == "DiagnosticReport" and report["id"] == prediction_id
    assert report["status"] == "preliminary"
    assert report["category"][0]["coding"][0]["code"] == "RAD"
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "30745-4",
        "display": "XR Chest Views",
    }
    assert "PNEUMONIA" in report["conclusion"] and "Not yet confirmed" in report["conclusion"]
    estimate = contained(report, "estimate")
    assert estimate["valueQuantity"]["value"] == 0.83
    assert estimate["component"][0]["valueQuantity"]["value"] == 0.41
    assert estimate["interpretation"] == [{"text": "PNEUMONIA"}]
    assert estimate["device"] == {"reference": "#model"}
    assert contained(report, "model")["version"] == [{"value": "xception-7"}]
    assert report["result"] == [{"reference": "#estimate"}]
    assert contained(report, "image")["content"]["url"] == f"/predictions/{prediction_id}/image"
    assert contained(report, "heatmap")["content"]["url"] == f"/predictions/{prediction_id}/heatmap"
    assert [media["link"]["reference"] for media in report["media"]] == ["#image", "#heatmap"]


def test_no_patient_identity_beyond_the_case_reference(app, client):
    with_reference = fhir_report(client, add_result(app, case_reference="STUDY-0042"))
    without = fhir_report(client, add_result(app))

    assert with_reference["subject"] == {
        "identifier": {"type": {"text": "case reference"}, "value": "STUDY-0042"}
    }
    assert "subject" not in without
    for report in (with_reference, without):
        assert "Patient" not in json.dumps(report)
        assert {resource["resourceType"] for resource in report["contained"]} == {
            "Device",
            "Observation",
            "Media",
        }


@pytest.mark.parametrize(
    ("findings", "status"),
    [(("UNSURE",), "preliminary"), (("NORMAL",), "final"), (("PNEUMONIA", "NORMAL"), "amended")],
)
def test_the_status_follows_the_review(app, client, findings, status):
    prediction_id = add_result(app, label="PNEUMONIA")
    review(app, prediction_id, *findings)

    report = fhir_report(client, prediction_id)

    assert report["status"] == status
    assert contained(report, "estimate")["status"] == status
    if status != "preliminary":
        assert report["conclusion"].startswith(f"Clinician's finding: {findings[-1]}")


def test_the_subtype_is_a_second_observation_when_the_model_gave_one(app, client):
    prediction_id = add_result(app, label="PNEUMONIA")
    assert [item["reference"] for item in fhir_report(client, prediction_id)["result"]] == ["#estimate"]
    with app.app_context():
        row = db.session().get(Result, prediction_id)
        row.viral_probability, row.subtype, row.subtype_threshold = 0.7, "VIRAL", 0.45
        db.session().commit()
    review(app, prediction_id, "PNEUMONIA", subtype_finding="BACTERIAL")

    report = fhir_report(client, prediction_id)

    assert [item["reference"] for item in report["result"]] == ["#estimate", "#subtype"]
    subtype = contained(report, "subtype")
    assert subtype["valueQuantity"]["value"] == 0.7
    assert subtype["component"][0]["valueQuantity"]["value"] == 0.45
    assert subtype["interpretation"] == [{"text": "VIRAL"}]
    assert "PNEUMONIA, BACTERIAL" in report["conclusion"] and "subtype VIRAL" in report["conclusion"]


def test_access_and_audit_as_for_the_rest_of_the_api(app, client, users):
    prediction_id = add_result(app)
    refused = client.get(f"/api/v1/predictions/{prediction_id}/fhir")
    assert refused.status_code == 401 and "error" in refused.json
    token = {"Authorization": f"Bearer {users.token(users.clinician)}"}

    fhir_report(client, prediction_id, headers=token)

    with app.app_context():
        views = db.session().scalars(select(AuditEvent).where(AuditEvent.target_id == prediction_id)).all()
        assert [(event.action, event.user_id) for event in views] == [("view", users.clinician.id)]
    unknown = client.get(f"/api/v1/predictions/{UNKNOWN}/fhir", headers=token)
    assert unknown.status_code == 404 and unknown.json == {"error": "no such prediction"}
