"""The JSON API: create, fetch, list, the subtype and the map, and a JSON error with a 4xx for
every bad request; every answer fits the OpenAPI document."""

from __future__ import annotations

import io
import json
from datetime import datetime

import pytest
from conftest import add_result

from pneumoscan.web import db
from pneumoscan.web.models import Result
from tests.api_schema import PAGE, RESULT, REVIEW, mismatches
from tests.openapi_conformance import conforming


@pytest.fixture(autouse=True)
def responses_conform(monkeypatch):
    """Every API answer a test here receives fits the OpenAPI document."""
    yield from conforming(monkeypatch)


def test_the_schema_check_names_every_difference():
    review = {
        "id": 1,
        "version": 1,
        "finding": "NORMAL",
        "note": None,
        "subtype_finding": None,
        "reviewer": None,
        "created_at": "t",
    }
    assert mismatches(review, REVIEW) == []
    assert mismatches({**review, "id": True, "extra": 1}, REVIEW) == [
        "extra: not in the schema",
        "id: bool True",
    ]
    assert mismatches({**review, "reviewer": {"id": 1}}, REVIEW) == ["reviewer.name: missing"]
    without_note = {key: value for key, value in review.items() if key != "note"}
    assert mismatches(without_note, REVIEW) == ["note: missing"]


def post(client, data: bytes, name: str = "xray.jpeg"):
    return client.post("/api/v1/predictions", data={"file": (io.BytesIO(data), name)})


def test_create_then_fetch_then_list(client, xray_paths):
    created = [post(client, path.read_bytes(), path.name) for path in xray_paths[:2]]

    for response in created:
        assert response.status_code == 201
        body = response.json
        assert mismatches(body, RESULT) == []
        assert body["label"] in ("NORMAL", "PNEUMONIA")
        assert 0.0 <= body["probability"] <= 1.0 and 0.0 < body["threshold"] < 1.0
        assert body["label"] == ("PNEUMONIA" if body["probability"] >= body["threshold"] else "NORMAL")
        assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0
        assert response.headers["Location"] == f"/api/v1/predictions/{body['id']}"
        heatmap = client.get(body["heatmap_url"])
        assert heatmap.status_code == 200 and heatmap.data.startswith(b"\x89PNG\r\n\x1a\n")
        assert client.get(body["image_url"]).status_code == 200
        assert client.get(f"/api/v1/predictions/{body['id']}").json == body

    first, second = (response.json for response in created)
    listing = client.get("/api/v1/predictions").json
    assert mismatches(listing, PAGE) == [] and listing["total"] == 2
    assert all(mismatches(item, RESULT) == [] for item in listing["items"])
    assert [item["id"] for item in listing["items"]] == [second["id"], first["id"]]
    page = client.get("/api/v1/predictions?limit=1&offset=1").json
    assert page["total"] == 2 and [item["id"] for item in page["items"]] == [first["id"]]
    beyond = client.get("/api/v1/predictions?offset=5").json
    assert beyond == {"total": 2, "limit": 20, "offset": 5, "items": []}


@pytest.mark.parametrize(
    ("data", "name", "status", "words"),
    [
        (b"", "empty.jpeg", 400, "empty"),
        (b"hello, this is a text file\n" * 10, "notes.jpeg", 415, "text"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" * 4, "scan.png", 415, "PDF"),
    ],
)
def test_bad_uploads_get_json_errors(client, data, name, status, words):
    response = post(client, data, name)

    assert response.status_code == status
    assert response.is_json and words.lower() in response.json["error"].lower()
    assert client.get("/api/v1/predictions").json["total"] == 0


def test_missing_file_field_is_400(client):
    for response in (
        client.post("/api/v1/predictions", data={"other": "x"}),
        client.post("/api/v1/predictions", data=b"raw", content_type="image/jpeg"),
    ):
        assert response.status_code == 400
        assert "file" in response.json["error"]


def test_upload_over_the_size_limit_is_413_json(make_app):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()

    response = post(client, b"\xff\xd8\xff" + b"\0" * 4096)

    assert response.status_code == 413 and "error" in response.json


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "offset=-1"])
def test_bad_list_parameters_are_400(client, query):
    response = client.get(f"/api/v1/predictions?{query}")

    assert response.status_code == 400 and "error" in response.json


def test_unknown_id_route_and_method_are_json(client):
    assert client.get("/api/v1/predictions/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.get("/api/v1/predictions/00000000-0000-4000-8000-000000000000").json == {
        "error": "no such prediction"
    }
    assert "error" in client.get("/api/v1/nowhere").json
    wrong_method = client.delete("/api/v1/predictions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json


def store(app, prediction_id: str, **columns) -> None:
    with app.app_context():
        row = db.session().get(Result, prediction_id)
        for name, value in columns.items():
            setattr(row, name, value)
        db.session().commit()


def test_subtype_is_null_until_the_model_gives_one_then_label_probability_and_threshold(app, client):
    normal = add_result(app, label="NORMAL")
    pneumonia = add_result(app, label="PNEUMONIA")
    assert client.get(f"/api/v1/predictions/{normal}").json["subtype"] is None

    store(app, normal, viral_probability=0.2, subtype_threshold=0.45)
    store(app, pneumonia, viral_probability=0.8, subtype="VIRAL", subtype_threshold=0.45)

    assert client.get(f"/api/v1/predictions/{normal}").json["subtype"] == {
        "label": None,
        "viral_probability": 0.2,
        "threshold": 0.45,
    }
    listed = {item["id"]: item for item in client.get("/api/v1/predictions").json["items"]}
    assert all(mismatches(item, RESULT) == [] for item in listed.values())
    assert listed[pneumonia]["subtype"] == {"label": "VIRAL", "viral_probability": 0.8, "threshold": 0.45}


def test_map_gives_the_stored_grid_with_its_shape_and_404_without_one(app, client):
    prediction_id = add_result(app)
    assert client.get(f"/api/v1/predictions/{prediction_id}/map").status_code == 404
    assert "no map" in client.get(f"/api/v1/predictions/{prediction_id}/map").json["error"]
    grid = [[round((row * 3 + col) / 23, 4) for col in range(3)] for row in range(8)]

    store(app, prediction_id, map_grid=json.dumps(grid))

    answer = client.get(f"/api/v1/predictions/{prediction_id}/map")
    assert answer.status_code == 200
    assert answer.json == {"shape": [8, 3], "values": grid, "range": [0.0, 1.0], "row_0": "top"}
    unknown = client.get("/api/v1/predictions/00000000-0000-4000-8000-000000000000/map")
    assert unknown.status_code == 404
