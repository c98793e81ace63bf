"""The pages a clinician uses: upload, result, history."""

from __future__ import annotations

import secrets
from typing import NamedTuple

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
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
from pneumoscan.web.results.forms import NOT_ASSESSED, ReviewForm, UploadForm
from pneumoscan.web.results.lookup import find_result, listed, viewed
from pneumoscan.web.results.upload_flow import record_from_request
from pneumoscan.web.server import error_handlers
from pneumoscan.web.server.rate_limits import rate_limited
from pneumoscan.web.storage import upload_store

bp = Blueprint("pages", __name__)
# The answer to the last upload of several files, in the browser's own (signed) session cookie:
# file names are shown on that answer only and never stored on the server.
UPLOAD_ANSWER = "upload_answer"
SHOWN_NAME_LENGTH = 80


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
    if not any(outcome.result for outcome in outcomes):
        return _render_outcomes(outcomes, case_reference, outcomes[0].refusal.status)
    key = secrets.token_urlsafe(9)
    session[UPLOAD_ANSWER] = {
        "key": key,
        "case_reference": case_reference,
        "outcomes": [
            [
                outcome.name[:SHOWN_NAME_LENGTH],
                outcome.result.id if outcome.result else None,
                outcome.refusal.message if outcome.refusal else None,
            ]
            for outcome in outcomes
        ],
    }
    return redirect(url_for("pages.uploads", key=key), code=303)


def _render_outcomes(outcomes: list[Outcome], case_reference: str | None, status: int = 200):
    made = sum(outcome.result is not None for outcome in outcomes)
    return render_template(
        "uploads.html", outcomes=outcomes, made=made, case_reference=case_reference
    ), status


def _kept_outcome(name: str, result_id: str | None, message: str | None) -> Outcome:
    """One outcome of the kept answer; a result deleted since is said to be."""
    result = db.session().get(Result, result_id) if result_id else None
    if result_id and result is None:
        message = "this result has since been deleted"
    return Outcome(name, result, ImageRejected(message) if message else None)


@bp.get("/uploads/<key>")
def uploads(key: str):
    """The answer to an upload of several files at its own URL (post, redirect, get), so a reload
    sends nothing again; it lasts in this browser until its next upload of several files."""
    answer = session.get(UPLOAD_ANSWER)
    if not answer or answer.get("key") != key:
        abort(
            404,
            "this upload's answer is kept only in the browser that sent it; find its results in the history",
        )
    outcomes = [_kept_outcome(name, result_id, message) for name, result_id, message in answer["outcomes"]]
    return _render_outcomes(outcomes, answer["case_reference"])


def render_result(row: Result, review_form: ReviewForm, status: int = 200):
    """The result page with its review history; `review_form` may carry errors to show."""
    return render_template(
        "result.html",
        result=row,
        reviews=reviews.versions(db.session(), row.id),
        review_form=review_form,
    ), status


@bp.get("/predictions/<uuid:prediction_id>")
def result(prediction_id):
    row = viewed(prediction_id)
    latest = reviews.latest_of(db.session(), row.id)
    return render_result(
        row,
        ReviewForm(
            formdata=None,
            finding=latest.finding if latest else None,
            subtype_finding=(latest.subtype_finding if latest else None) or NOT_ASSESSED.value,
        ),
    )


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
            db.session(),
            row,
            form.finding.data,
            form.note.data,
            current_user._get_current_object(),
            form.subtype_finding.data,
        )
        db.session().commit()
    except reviews.ReviewRefused as refusal:
        form.finding.errors = [refusal.message]
        return render_result(row, form, refusal.status)
    confirmed = f"{saved.finding}, {saved.subtype_finding}" if saved.subtype_finding else saved.finding
    flash(f"review saved: {confirmed} (version {saved.version})")
    return redirect(url_for("pages.result", prediction_id=row.id), code=303)


@bp.route("/predictions/<uuid:prediction_id>/delete", methods=["GET", "POST"])
@admin_required
def delete(prediction_id):
    """GET asks first (one click never deletes); the confirmation's POST deletes."""
    if request.method != "POST":
        row = find_result(prediction_id)
        return render_template("confirm_delete.html", result=row, form=ConfirmForm(formdata=None))
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
        subtypes=queries.SUBTYPES,
        sorts=queries.SORTS,
        review_states=reviews.REVIEW_STATES,
        review_state=reviews.review_state,
    )


@bp.get("/history.csv")
def history_csv():
    """The history's results (same filters, every page) with their latest reviews, as CSV."""
    response = export_csv(db.session(), queries.parse_filters(), "/history.csv")
    db.session().commit()
    return response
