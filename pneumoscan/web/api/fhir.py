"""A result as an HL7 FHIR R4 DiagnosticReport, for records systems.

The report names no patient: its subject is only the case reference (when the upload had one).
The model's estimate and, when the model gave one, its subtype estimate are contained
Observations, each made by the model version as a contained Device; the stored image and the
heatmap are contained Media. The status follows the review: preliminary until a clinician
confirms a finding (UNSURE confirms nothing), final at the first review, amended after.
"""

from __future__ import annotations

from pneumoscan.web.models import Result, Review
from pneumoscan.web.results.reviews import UNSURE

MEDIA_TYPE = "application/fhir+json"
LOINC = "http://loinc.org"
CHEST_XRAY = {"system": LOINC, "code": "30745-4", "display": "XR Chest Views"}
RADIOLOGY = {
    "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
    "code": "RAD",
    "display": "Radiology",
}
IMAGING = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "imaging",
    "display": "Imaging",
}
PROBABILITY_UNIT = {"unit": "probability", "system": "http://unitsofmeasure.org", "code": "1"}


def report_status(review: Review | None) -> str:
    """preliminary, final or amended, from the latest review."""
    if review is None or review.finding == UNSURE:
        return "preliminary"
    return "final" if review.version == 1 else "amended"


def _probability(value: float) -> dict:
    return {"value": value, **PROBABILITY_UNIT}


def _estimate(
    obs_id: str, status: str, what: str, probability: float, threshold: float, label: str | None
) -> dict:
    """An Observation of one calibrated probability, judged at its threshold."""
    observation = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "category": [{"coding": [IMAGING]}],
        "code": {"text": what},
        "valueQuantity": _probability(probability),
        "device": {"reference": "#model"},
        "component": [{"code": {"text": "decision threshold"}, "valueQuantity": _probability(threshold)}],
    }
    if label is not None:
        observation["interpretation"] = [{"text": label}]
    return observation


def _media(media_id: str, url: str, title: str) -> dict:
    return {
        "resourceType": "Media",
        "id": media_id,
        "status": "completed",
        "content": {"contentType": "image/png", "url": url, "title": title},
    }


def conclusion(row: Result, review: Review | None) -> str:
    """The report's conclusion in words: the clinician's finding once there is one, the estimate always."""
    estimate = (
        f"model estimate {row.label} "
        f"(probability of pneumonia {row.probability:.3f} at threshold {row.threshold:.3f})"
    )
    if row.subtype is not None:
        estimate += (
            f", subtype {row.subtype} "
            f"(probability viral {row.viral_probability:.3f} at threshold {row.subtype_threshold:.3f})"
        )
    if review is None or review.finding == UNSURE:
        return f"Not yet confirmed by a clinician: {estimate}."
    finding = review.finding + (f", {review.subtype_finding}" if review.subtype_finding else "")
    return f"Clinician's finding: {finding}; {estimate}."


def diagnostic_report(row: Result, review: Review | None, image_url: str, heatmap_url: str) -> dict:
    """The DiagnosticReport for a result with its latest review (None while unreviewed)."""
    status = report_status(review)
    contained = [
        {
            "resourceType": "Device",
            "id": "model",
            "deviceName": [{"name": "PneumoScan", "type": "model-name"}],
            "version": [{"value": row.model_version}],
        },
        _estimate("estimate", status, "Probability of pneumonia", row.probability, row.threshold, row.label),
        _media("image", image_url, "Chest X-ray as scored"),
        _media("heatmap", heatmap_url, "Grad-CAM heatmap over the X-ray"),
    ]
    results = [{"reference": "#estimate"}]
    if row.viral_probability is not None:
        contained.append(
            _estimate(
                "subtype",
                status,
                "Probability that the pneumonia is viral (not bacterial)",
                row.viral_probability,
                row.subtype_threshold,
                row.subtype,
            )
        )
        results.append({"reference": "#subtype"})
    report = {
        "resourceType": "DiagnosticReport",
        "id": row.id,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{row.id}"}],
        "contained": contained,
        "status": status,
        "category": [{"coding": [RADIOLOGY]}],
        "code": {"coding": [CHEST_XRAY], "text": "Chest X-ray"},
        "effectiveDateTime": row.created_at.isoformat(),
        "issued": (review.created_at if review is not None else row.created_at).isoformat(),
        "result": results,
        "media": [
            {"comment": "chest X-ray", "link": {"reference": "#image"}},
            {"comment": "heatmap", "link": {"reference": "#heatmap"}},
        ],
        "conclusion": conclusion(row, review),
    }
    if row.case_reference:
        report["subject"] = {"identifier": {"type": {"text": "case reference"}, "value": row.case_reference}}
    return report
