"""The pages a clinician uses: upload, result, history, plus the health check."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from pneumoscan.errors import ImageRejected
from pneumoscan.formats import ACCEPTED_LABELS, NOT_KEPT_LABELS
from pneumoscan.web import audit, db, health, retention
from pneumoscan.web.access import admin_required, open_demo
from pneumoscan.web.forms import ConfirmForm, UploadForm
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.models import PredictionRecord
from pneumoscan.web.queryargs import MAX_QUERY_INT, int_arg
from pneumoscan.web.ratelimit import rate_limited
from pneumoscan.web.service import record_from_request, upload_store

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


def find_result(prediction_id) -> PredictionRecord:
    """The result with this id, or 404 (also for one that was deleted)."""
    row = db.session().get(PredictionRecord, str(prediction_id))
    if row is None:
        abort(404, "no such prediction")
    return row


def viewed(prediction_id) -> PredictionRecord:
    """find_result, recording the view in the audit trail."""
    row = find_result(prediction_id)
    audit.add(db.session(), audit.VIEW, target_id=row.id)
    db.session().commit()
    return row


@bp.get("/predictions/<uuid:prediction_id>")
def result(prediction_id):
    return render_template("result.html", prediction=viewed(prediction_id), delete_form=ConfirmForm())


@bp.post("/predictions/<uuid:prediction_id>/delete")
@admin_required
def delete(prediction_id):
    if not ConfirmForm().validate_on_submit():
        abort(400, "the form expired; reload the page and try again")
    retention.delete_result(db.session(), upload_store(), find_result(prediction_id))
    flash("result deleted, with its image and heatmap")
    return redirect(url_for("pages.history"), code=303)


def page_count(total: int, per_page: int) -> int:
    """Pages needed for `total` rows; an empty list still has its one (empty) page."""
    return max((total + per_page - 1) // per_page, 1)


@bp.get("/history")
def history():
    per_page = current_app.config["HISTORY_PER_PAGE"]
    page = int_arg("page", 1, 1, MAX_QUERY_INT // per_page)
    total, rows = db.newest_first(per_page, (page - 1) * per_page)
    return render_template(
        "history.html", predictions=rows, page=page, pages=page_count(total, per_page), total=total
    )


def _may_name_parts() -> bool:
    """Only in an open demo with no account. A database that takes no write may still answer
    whether an account exists; one that answers nothing leaves what the app last found."""
    try:
        return open_demo(ask_database=True)
    except SQLAlchemyError:
        db.session().rollback()
        return open_demo()


@bp.get("/healthz")
def healthz():
    """For load balancers: 200 only when the model loads, the database takes a write and the
    store takes a file; otherwise 503, naming the part that failed.

    Open to all, so outside an open demo with no account it says nothing but the status.
    """
    database = health.database_writable()
    parts = {"database": database, "storage": health.storage_writable(database)}
    healthy = all(state == "ok" for state in parts.values())
    status, code = ("ok", 200) if healthy else ("unavailable", 503)
    model_version = predictor().model_version
    if not _may_name_parts():
        return jsonify(status=status), code
    return jsonify(status=status, model_version=model_version, **parts), code
