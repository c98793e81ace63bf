"""The one flow behind both the upload form and the API: decode, estimate, overlay, store, commit."""

from __future__ import annotations

import hashlib
import uuid

from flask import current_app
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from pneumoscan.decode import decode_image
from pneumoscan.errors import ImageRejected
from pneumoscan.formats import BY_NAME, PNG
from pneumoscan.gradcam import overlay_heatmap
from pneumoscan.inference import Predictor
from pneumoscan.pixels_only import pixels_only
from pneumoscan.png import encode_png
from pneumoscan.web import audit, db
from pneumoscan.web.modelcache import predictor
from pneumoscan.web.models import Result, User, utc_now
from pneumoscan.web.results import refusals, site_threshold
from pneumoscan.web.results.filenames import sanitise_filename
from pneumoscan.web.results.map_grid import encode_grid
from pneumoscan.web.results.scoring_slots import scoring_slot
from pneumoscan.web.server.security import request_id
from pneumoscan.web.storage import Store, upload_store
from pneumoscan.web.store_names import stored_names


def record_upload(
    data: bytes,
    filename: str | None,
    predictor: Predictor,
    store: Store,
    session: Session,
    uploaded_by: User | None = None,
    case_reference: str | None = None,
) -> Result:
    """Estimate an upload and keep it, with its audit event; raises ImageRejected for uploads we refuse.

    The row is committed only after both files are in place (or, in the database store, in
    the same transaction), and any failure removes them, so a result is either complete
    (row + original + heatmap) or absent. `filename` is kept only when given: a client's file
    name can carry a patient's name (see KEEP_FILENAMES). The upload is judged with the site
    threshold of the model version when one is set (pneumoscan.web.results.site_threshold), and the row
    keeps the threshold used.
    """
    decoded = decode_image(data)
    threshold = site_threshold.in_use(session, predictor.card)
    estimate = predictor.predict(decoded, threshold=threshold.value)
    heatmap = encode_png(overlay_heatmap(decoded.gray, estimate.cam, estimate.probability))
    source = BY_NAME[decoded.source_format]
    kept = pixels_only(data, source.name, decoded.orientation) if source.kept_as_uploaded else None
    if kept is not None:
        original, extension = kept, source.stored_suffix
    else:
        original, extension = encode_png(decoded.gray), PNG.stored_suffix
    prediction_id = str(uuid.uuid4())
    image_name, heatmap_name = stored_names(prediction_id, extension)
    row = Result(
        id=prediction_id,
        created_at=utc_now(),
        original_filename=sanitise_filename(filename) if filename is not None else "",
        sha256=hashlib.sha256(data).hexdigest(),
        width=decoded.width,
        height=decoded.height,
        source_format=decoded.source_format,
        probability=float(estimate.probability),
        logit=estimate.logit,
        gate_reading=estimate.gate_reading.as_dict(),
        label=estimate.label,
        threshold=float(estimate.threshold),
        model_version=estimate.model_version,
        inference_ms=float(estimate.inference_ms),
        image_path=image_name,
        heatmap_path=heatmap_name,
        uploaded_by_id=uploaded_by.id if uploaded_by is not None else None,
        case_reference=case_reference,
        site_threshold_id=threshold.row.id if threshold.row is not None else None,
        viral_probability=estimate.viral_probability,
        subtype=estimate.subtype,
        subtype_threshold=(
            predictor.card.subtype.threshold if estimate.viral_probability is not None else None
        ),
        map_grid=encode_grid(estimate.cam),
    )
    audit.add(session, audit.UPLOAD, target_id=row.id, user=uploaded_by)
    return save_result(row, {row.image_path: original, row.heatmap_path: heatmap}, store, session)


def save_result(row: Result, files: dict[str, bytes], store: Store, session: Session) -> Result:
    """Place the files, then commit the row; if the commit fails the files go too."""
    placed = store.put(files, session)
    try:
        session.add(row)
        session.commit()
    except BaseException:
        session.rollback()
        store.remove(placed)
        raise
    return row


def record_from_request(upload: FileStorage, case_reference: str | None = None) -> Result:
    """record_upload with the current app's model, store, request session and signed-in user;
    `case_reference` has been through clean_case_reference.

    Refusals are logged with the request id but without the file name, which may name a patient,
    and counted per reason and day for the dashboard (pneumoscan.web.results.refusals).
    """
    try:
        with scoring_slot(current_app.config["SCORING_SLOTS"]):
            return record_upload(
                upload.read(),
                upload.filename if current_app.config["KEEP_FILENAMES"] else None,
                predictor(),
                upload_store(),
                db.session(),
                current_user._get_current_object() if current_user.is_authenticated else None,
                case_reference,
            )
    except ImageRejected as refusal:
        current_app.logger.info(
            "request %s: upload refused (%d): %s", request_id(), refusal.status, refusal.message
        )
        refusals.count(db.database().engine, refusal.message)
        raise
