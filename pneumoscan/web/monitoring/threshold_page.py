"""Admin page for this site's threshold: the proposal from reviewed cases, apply, reset, history."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from pneumoscan.web import audit, db
from pneumoscan.web.accounts.guard import require_admin
from pneumoscan.web.forms import ConfirmForm
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.results import site_threshold

bp = Blueprint("threshold_admin", __name__, url_prefix="/admin/threshold")
bp.before_request(require_admin)


@bp.get("")
def show():
    database, card = db.session(), predictor().card
    cases = site_threshold.reviewed_cases(database, card.model_version)
    return render_template(
        "admin_threshold.html",
        card=card,
        in_use=site_threshold.in_use(database, card),
        cases=cases,
        missing=site_threshold.missing(cases),
        minimum=site_threshold.MIN_PER_CLASS,
        proposal=site_threshold.propose(cases),
        changes=site_threshold.history(database, card.model_version),
        form=ConfirmForm(formdata=None),
    )


@bp.post("/<any(apply, reset):change>")
def change(change: str):
    """Apply the proposal the admin saw (recomputed here; refused if the cases changed since) or
    reset to the model card's threshold. Either way a new SiteThreshold row, audited."""
    if not ConfirmForm().validate_on_submit():
        abort(400, "the form expired; reload the page and try again")
    database, card = db.session(), predictor().card
    cases = site_threshold.reviewed_cases(database, card.model_version)
    proposal = None
    if change == "apply":
        proposal = site_threshold.propose(cases)
        if proposal is None:
            abort(409, "there are not enough reviewed cases to propose a threshold")
        if request.form.get("threshold") != repr(proposal.threshold):
            flash("the reviewed cases changed since the page was shown; check the new proposal")
            return redirect(url_for("threshold_admin.show"), code=303)
    row = site_threshold.record_change(database, card, proposal, cases, current_user)
    said = (
        f"{card.model_version}: site threshold {row.threshold:.4f} from {cases.normal} normal and "
        f"{cases.pneumonia} pneumonia reviewed cases (was {row.previous_threshold:.4f})"
        if proposal
        else f"{card.model_version}: reset to the model card's {card.threshold:.4f} "
        f"(was {row.previous_threshold:.4f})"
    )
    audit.add(database, audit.SITE_THRESHOLD, target_id=row.id, detail=said)
    database.commit()
    flash(said)
    return redirect(url_for("threshold_admin.show"), code=303)
