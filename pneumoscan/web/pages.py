"""The pages a clinician uses: upload, result, history, plus the health check."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for

from pneumoscan.errors import ImageRejected
from pneumoscan.formats import ACCEPTED_LABELS, NOT_KEPT_LABELS
from pneumoscan.web import db, health
from pneumoscan.web.forms import UploadForm
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.models import PredictionRecord
from pneumoscan.web.queryargs import MAX_QUERY_INT, int_arg
from pneumoscan.web.ratelimit import rate_limited
from pneumoscan.web.service import record_from_request

bp = Blueprint("pages", __name__)


def render_upload_form(form: UploadForm, message: str | None = None, status: int = 200):
    """The upload page, optionally showing why the last upload was refused."""
    if message:
        form.file.errors = [*form.file.errors, message]
    return render_template(
        "index.html", form=form, accepted_labels=ACCEPTED_LABELS, not_kept_labels=NOT_KEPT_LABELS
    ), status


@bp.route("/", methods=["GET", "POST"])
@rate_limited
def index():
    form = UploadForm()
    if request.method != "POST":
        return render_upload_form(form)
    if not form.validate():
        return render_upload_form(form, status=400)
    try:
        row = record_from_request(form.file.data)
    except ImageRejected as refusal:
        return render_upload_form(form, refusal.message, refusal.status)
    return redirect(url_for("pages.result", prediction_id=row.id), code=303)


@bp.get("/predictions/<uuid:prediction_id>")
def result(prediction_id):
    row = db.session().get(PredictionRecord, str(prediction_id))
    if row is None:
        abort(404, "no such prediction")
    return render_template("result.html", prediction=row)


@bp.get("/history")
def history():
    per_page = current_app.config["HISTORY_PER_PAGE"]
    page = int_arg("page", 1, 1, MAX_QUERY_INT // per_page)
    total, rows = db.newest_first(per_page, (page - 1) * per_page)
    pages = max((total + per_page - 1) // per_page, 1)
    return render_template("history.html", predictions=rows, page=page, pages=pages, total=total)


@bp.get("/healthz")
def healthz():
    """For load balancers: 200 only when the model loads, the database takes a write and the
    store takes a file; otherwise 503 naming the part that failed."""
    database = health.database_writable()
    parts = {"database": database, "storage": health.storage_writable(database)}
    healthy = all(state == "ok" for state in parts.values())
    return jsonify(
        status="ok" if healthy else "unavailable", model_version=predictor().model_version, **parts
    ), 200 if healthy else 503
