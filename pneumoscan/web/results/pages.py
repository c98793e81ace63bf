"""The pages a clinician uses: upload, result, history."""

from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from pneumoscan.errors import ImageRejected
from pneumoscan.formats import ACCEPTED_LABELS, NOT_KEPT_LABELS
from pneumoscan.web import db
from pneumoscan.web.accounts.guard import admin_required
from pneumoscan.web.forms import ConfirmForm
from pneumoscan.web.models import Result, User
from pneumoscan.web.queryargs import MAX_QUERY_INT, int_arg, page_count
from pneumoscan.web.results import queries, retention, reviews
from pneumoscan.web.results.case_reference import HELP as CASE_REFERENCE_HELP
from pneumoscan.web.results.exports import export_csv
from pneumoscan.web.results.filenames import sanitise_filename
from pneumoscan.web.results.forms import ReviewForm, UploadForm
from pneumoscan.web.results.lookup import find_result, listed, viewed
from pneumoscan.web.results.upload_flow import record_from_request
from pneumoscan.web.server import error_handlers
from pneumoscan.web.server.rate_limits import rate_limited
from pneumoscan.web.storage import upload_store

bp = Blueprint("pages", __name__)


def render_upload_form(form: UploadForm, message: str | None = None, status: int = 200):
    """The upload page, optionally showing why the last upload was refused."""
    if message:
        form.file.errors = [*form.file.errors, message]
    return render_template(
        "index.html",
        form=form,
        accepted_labels=ACCEPTED_LABELS,
        not_kept_labels=NOT_KEPT_LABELS,
        case_reference_help=CASE_REFERENCE_HELP,
    ), status


def _upload_form_again(message: str, status: int):
    """The upload form showing why the POST failed, for the app's error handlers."""
    return render_upload_form(UploadForm(formdata=None), message, status)


bp.record_once(lambda state: error_handlers.add_form_page(state.app, "pages.index", _upload_form_again))


class Outcome(NamedTuple):
    """What became of one file of an upload of several: its result, or why it was refused."""

    name: str
    result: Result | None
    refusal: ImageRejected | None


def _outcome(upload: FileStorage, case_reference: str | None) -> Outcome:
    """One file through the usual flow; a refusal is reported, not raised, so the others go on.
    The name is shown on this answer only, never stored unless KEEP_FILENAMES says so."""
    name = sanitise_filename(upload.filename)
    try:
        return Outcome(name, record_from_request(upload, case_reference), None)
    except ImageRejected as refusal:
        return Outcome(name, None, refusal)


@bp.route("/", methods=["GET", "POST"])
@rate_limited
def index():
    """One file: its result page (or the form with why it was refused). Several: a page listing each."""
    form = UploadForm()
    if request.method != "POST":
        return render_upload_form(form)
    if not form.validate():
        return render_upload_form(form, status=400)
    uploads, case_reference = form.file.data, form.case_reference.data
    most = current_app.config["MAX_FILES_PER_UPLOAD"]
    if len(uploads) > most:
        return render_upload_form(form, f"choose at most {most} files at once ({len(uploads)} chosen)", 400)
    if len(uploads) == 1:
        try:
            row = record_from_request(uploads[0], case_reference)
        except ImageRejected as refusal:
            return render_upload_form(form, refusal.message, refusal.status)
        return redirect(url_for("pages.result", prediction_id=row.id), code=303)
    outcomes = [_outcome(upload, case_reference) for upload in uploads]
    made = [outcome for outcome in outcomes if outcome.result is not None]
    status = 200 if made else outcomes[0].refusal.status
    return render_template(
        "uploads.html", outcomes=outcomes, made=len(made), case_reference=case_reference
    ), status


def render_result(row: Result, review_form: ReviewForm, status: int = 200):
    """The result page with its review history; `review_form` may carry errors to show."""
    return render_template(
        "result.html",
        result=row,
        reviews=reviews.versions(db.session(), row.id),
        review_form=review_form,
        delete_form=ConfirmForm(formdata=None),
    ), status


@bp.get("/predictions/<uuid:prediction_id>")
def result(prediction_id):
    row = viewed(prediction_id)
    latest = reviews.latest_of(db.session(), row.id)
    return render_result(row, ReviewForm(formdata=None, finding=latest.finding if latest else None))


@bp.post("/predictions/<uuid:prediction_id>/review")
def review(prediction_id):
    """Records the signed-in user's finding as a new review version; reviews are signed, so an
    open demo without accounts cannot record one."""
    row = find_result(prediction_id)
    if not current_user.is_authenticated:
        abort(403, "reviews are signed: sign in with an account to review a result")
    form = ReviewForm()
    if not form.validate():
        return render_result(row, form, 400)
    try:
        saved = reviews.add_review(
            db.session(), row, form.finding.data, form.note.data, current_user._get_current_object()
        )
        db.session().commit()
    except reviews.ReviewRefused as refusal:
        form.finding.errors = [refusal.message]
        return render_result(row, form, refusal.status)
    flash(f"review saved: {saved.finding} (version {saved.version})")
    return redirect(url_for("pages.result", prediction_id=row.id), code=303)


@bp.post("/predictions/<uuid:prediction_id>/delete")
@admin_required
def delete(prediction_id):
    if not ConfirmForm().validate_on_submit():
        abort(400, "the form expired; reload the page and try again")
    store = upload_store()
    files = retention.delete_result(db.session(), store, find_result(prediction_id))
    db.session().commit()
    store.remove(files)
    flash("result deleted, with its image and heatmap")
    return redirect(url_for("pages.history"), code=303)


@bp.get("/history")
def history():
    """Results newest first with their review state, narrowed by the filters in the query string."""
    filters = queries.parse_filters()
    per_page = current_app.config["HISTORY_PER_PAGE"]
    page = int_arg("page", 1, 1, MAX_QUERY_INT // per_page)
    total, rows = queries.page(db.session(), filters, per_page, (page - 1) * per_page)
    listed("/history", filters, (page - 1) * per_page, rows)
    return render_template(
        "history.html",
        rows=rows,
        page=page,
        pages=page_count(total, per_page),
        total=total,
        filters=filters,
        filter_args=filters.query_args(),
        uploaders=db.session().scalars(select(User).order_by(User.display_name)).all(),
        estimates=queries.ESTIMATES,
        review_states=reviews.REVIEW_STATES,
        review_state=reviews.review_state,
    )


@bp.get("/history.csv")
def history_csv():
    """The history's results (same filters, every page) with their latest reviews, as CSV."""
    response = export_csv(db.session(), queries.parse_filters(), "/history.csv")
    db.session().commit()
    return response
