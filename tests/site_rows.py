"""Results and reviews written straight into the database, for dashboard and site-threshold tests."""

from __future__ import annotations

import uuid
from datetime import datetime

from pneumoscan.web.models import PredictionRecord, Review, utc_now


def add_result(
    session,
    probability: float,
    threshold: float,
    model_version: str,
    findings: tuple[str, ...] = (),
    created_at: datetime | None = None,
    gate_reading: dict | None = None,
) -> PredictionRecord:
    """One result labelled at `threshold`, with a review version per finding (the last counts)."""
    row = PredictionRecord(
        id=str(uuid.uuid4()),
        created_at=created_at or utc_now(),
        original_filename="",
        sha256="0" * 64,
        width=224,
        height=224,
        source_format="png",
        probability=probability,
        label="PNEUMONIA" if probability >= threshold else "NORMAL",
        threshold=threshold,
        model_version=model_version,
        inference_ms=10.0,
        image_path="none.png",
        heatmap_path="none.heatmap.png",
        gate_reading=gate_reading,
    )
    session.add(row)
    for version, finding in enumerate(findings, start=1):
        session.add(Review(prediction_id=row.id, version=version, finding=finding))
    return row
