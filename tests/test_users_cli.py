"""`flask --app app users ...`, and the whole story without OPEN_DEMO: accounts from the CLI,
sign-in through the form, uploads by form and by token, refusals, deletion and the audit page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import PASSWORD, post_login, run_flask
from sqlalchemy import select

from pneumoscan.web import db
from pneumoscan.web.models import AuditEvent, User

REPO = Path(__file__).resolve().parents[1]


def test_users_create_list_token_and_deactivate(make_app):
    app = make_app(OPEN_DEMO=False)

    made = run_flask(
        app, "users", "create", "Ada@Clinic.example", "--name", "Dr Ada", "--role", "admin", password=PASSWORD
    )
    clinician = run_flask(app, "users", "create", "cy@clinic.example", "--name", "Dr Cy", password=PASSWORD)
    again = run_flask(app, "users", "create", "cy@clinic.example", "--name", "Dr Cy", password=PASSWORD)
    short = run_flask(app, "users", "create", "dee@clinic.example", "--name", "Dr Dee", password="short")

    assert made.exit_code == 0 and "created ada@clinic.example (admin)" in made.output
    assert clinician.exit_code == 0 and "(clinician)" in clinician.output
    assert again.exit_code == 1 and "already exists" in again.output
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    listing = run_flask(app, "users", "list").output.splitlines()
    assert [line.split("\t")[:3] for line in listing] == [
        ["ada@clinic.example", "admin", "active"],
        ["cy@clinic.example", "clinician", "active"],
    ]

    token = run_flask(app, "users", "token", "cy@clinic.example").output.strip()
    assert re.fullmatch(r"psk_[A-Za-z0-9_-]{43}", token)
    client = app.test_client()
    assert client.get("/api/v1/predictions", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    assert run_flask(app, "users", "deactivate", "cy@clinic.example").exit_code == 0
    assert "inactive" in run_flask(app, "users", "list").output.splitlines()[1]
    assert client.get("/api/v1/predictions", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    last_admin = run_flask(app, "users", "deactivate", "ada@clinic.example")
    assert last_admin.exit_code == 1 and "last active admin" in last_admin.output
    assert run_flask(app, "users", "token", "nobody@clinic.example").exit_code == 1
    with app.app_context():
        actions = [event.action for event in db.session().scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["account-create", "account-create", "token-create", "list", "account-active"]


def test_flask_command_reads_the_password_from_a_pipe(tmp_path, model_dir, upgrade_database):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}",
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
        "SECRET_KEY": "cli-test",
        "MODEL_DIR": str(model_dir),
    }
    env.pop("OPEN_DEMO", None)
    upgrade_database(env["DATABASE_URL"])
    flask = [sys.executable, "-m", "flask", "--app", "app", "users"]

    made = subprocess.run(
        [*flask, "create", "ops@clinic.example", "--name", "Ops", "--role", "admin"],
        input=f"{PASSWORD}\n",
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    listed = subprocess.run([*flask, "list"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    assert made.returncode == 0, made.stderr
    assert "created ops@clinic.example (admin)" in made.stdout
    assert "setup code" not in made.stderr
    assert listed.stdout.startswith("ops@clinic.example\tadmin\tactive\tOps\tnever")


def test_accounts_end_to_end_without_open_demo(make_app, csrf_token, xray_paths):
    app = make_app(OPEN_DEMO=False)
    run_flask(
        app, "users", "create", "ada@clinic.example", "--name", "Dr Ada", "--role", "admin", password=PASSWORD
    )
    run_flask(
        app,
        "users",
        "create",
        "cy@clinic.example",
        "--name",
        "Dr Cy",
        "--role",
        "clinician",
        password=PASSWORD,
    )
    api_token = run_flask(app, "users", "token", "cy@clinic.example").output.strip()
    with app.app_context():
        admin_id, clinician_id = (
            db.session().scalar(select(User.id).where(User.email == email))
            for email in ("ada@clinic.example", "cy@clinic.example")
        )

    anonymous = app.test_client()
    for path in ("/", "/history", "/account", "/admin/users", "/admin/audit"):
        answer = anonymous.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/login"), path
    assert anonymous.get("/api/v1/predictions").status_code == 401

    clinician = app.test_client()
    assert post_login(clinician, "cy@clinic.example").status_code == 303
    with open(xray_paths[0], "rb") as handle:
        by_form = clinician.post(
            "/", data={"csrf_token": csrf_token(clinician, "/"), "file": (handle, "a.jpeg")}
        )
    assert by_form.status_code == 303
    form_id = by_form.headers["Location"].rsplit("/", 1)[1]
    assert "Dr Cy" in clinician.get(by_form.headers["Location"]).get_data(as_text=True)
    with open(xray_paths[1], "rb") as handle:
        by_api = app.test_client().post(
            "/api/v1/predictions",
            data={"file": (handle, "b.jpeg")},
            headers={"Authorization": f"Bearer {api_token}"},
        )
    assert by_api.status_code == 201 and by_api.json["uploaded_by"]["name"] == "Dr Cy"
    for path in (
        f"/predictions/{form_id}",
        f"/predictions/{form_id}/image",
        f"/predictions/{form_id}/heatmap",
    ):
        assert anonymous.get(path).status_code == 302, path
    assert anonymous.get(f"/api/v1/predictions/{form_id}").status_code == 401
    assert anonymous.delete(f"/api/v1/predictions/{form_id}").status_code == 401

    same_site = {"Origin": "http://localhost"}
    assert clinician.delete(f"/api/v1/predictions/{form_id}", headers=same_site).status_code == 403
    admin = app.test_client()
    assert post_login(admin, "ada@clinic.example").status_code == 303
    files = [
        Path(app.config["UPLOAD_FOLDER"]) / name for name in (f"{form_id}.jpg", f"{form_id}.heatmap.png")
    ]
    assert all(path.is_file() for path in files)
    assert admin.delete(f"/api/v1/predictions/{form_id}", headers=same_site).status_code == 204
    assert not any(path.exists() for path in files)
    assert admin.get(f"/predictions/{form_id}").status_code == 404
    assert admin.get(f"/api/v1/predictions/{form_id}").status_code == 404

    audit_page = admin.get("/admin/audit?page=1").get_data(as_text=True)
    rows = re.findall(
        r'<td data-label="User">([^<]*)</td>\s*<td data-label="Action">([^<]*)</td>\s*'
        r'<td data-label="Target" class="file">([^<]*)</td>',
        audit_page,
    )
    assert rows[0] == ("ada@clinic.example", "delete", form_id)
    assert ("cy@clinic.example", "upload", form_id) in rows
    assert ("cy@clinic.example", "upload", by_api.json["id"]) in rows
    assert ("cy@clinic.example", "view", form_id) in rows
    assert ("ada@clinic.example", "sign-in", str(admin_id)) in rows
    assert ("cy@clinic.example", "sign-in", str(clinician_id)) in rows
    assert len([row for row in rows if row[1] == "upload"]) == 2
