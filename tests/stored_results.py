"""Results through the API and back, for the storage tests: upload, fetch the files, read the rows."""

from __future__ import annotations

from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web.models import Result, StoredFile


def upload_as(client, path, headers: dict):
    with open(path, "rb") as handle:
        reply = client.post("/api/v1/predictions", data={"file": (handle, path.name)}, headers=headers)
    assert reply.status_code == 201, reply.json
    return reply.json


def upload(client, path):
    return upload_as(client, path, {})


def stored_files(app) -> dict[str, bytes]:
    with app.app_context():
        return {row.name: row.data for row in db.session().scalars(select(StoredFile))}


def all_rows(app) -> list[dict]:
    """Every column of every result, as the app reads them back."""
    columns = [column.key for column in Result.__table__.columns]
    with app.app_context():
        rows = db.session().scalars(select(Result).order_by(Result.id))
        return [{key: getattr(row, key) for key in columns} for row in rows]


def fetched_as(client, item, headers: dict) -> tuple[bytes, bytes]:
    return client.get(item["image_url"], headers=headers).data, client.get(
        item["heatmap_url"], headers=headers
    ).data


def fetched(client, item) -> tuple[bytes, bytes]:
    return fetched_as(client, item, {})
