"""Every read of patient images is attributable: list calls, image and heatmap fetches, exports."""

from __future__ import annotations

from conftest import Accounts, add_result
from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


def events(app) -> list[tuple[str, str | None, int | None, str | None]]:
    with app.app_context():
        rows = db.session().scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.action, e.target_id, e.user_id, e.detail) for e in rows if e.action not in ("sign-in",)]


def test_a_bulk_read_with_a_token_leaves_one_event_per_list_and_per_file(app, tmp_path):
    users = Accounts(app)
    ids = [add_result(app) for _ in range(3)]
    (tmp_path / "uploads").mkdir(exist_ok=True)
    for prediction_id in ids:
        (tmp_path / "uploads" / f"{prediction_id}.png").write_bytes(PNG)
        (tmp_path / "uploads" / f"{prediction_id}.heatmap.png").write_bytes(PNG)
    token = {"Authorization": f"Bearer {users.token(users.clinician)}"}
    client = app.test_client()
    before = len(events(app))

    listing = client.get("/api/v1/predictions?limit=100", headers=token).json
    for item in listing["items"]:
        assert client.get(item["image_url"], headers=token).status_code == 200
        assert client.get(item["heatmap_url"], headers=token).status_code == 200

    new = events(app)[before:]
    who = users.clinician.id
    assert new[0] == ("list", None, who, "3 result(s) from /api/v1/predictions offset=0; all results")
    reads = {
        (target, detail) for action, target, user, detail in new[1:] if action == "read-file" and user == who
    }
    assert reads == {(i, kind) for i in ids for kind in ("image", "heatmap")} and len(new) == 7


def test_the_history_page_is_audited_as_a_list(app):
    users = Accounts(app)
    add_result(app, label="PNEUMONIA")
    client = users.client(users.admin)

    assert client.get("/history?estimate=PNEUMONIA").status_code == 200

    assert events(app)[-1] == (
        "list",
        None,
        users.admin.id,
        "1 result(s) from /history offset=0; estimate=PNEUMONIA",
    )
