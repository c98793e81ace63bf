"""Subtype and map: per result the viral probability, its subtype label and the subtype threshold
it was given with, and the Grad-CAM map's raw grid (JSON); per review the clinician's subtype.

Revision ID: 0005_subtype_and_map
Revises: 0004_reviews
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_subtype_and_map"
down_revision = "0004_reviews"
branch_labels = None
depends_on = None

PREDICTION_COLUMNS = (
    ("viral_probability", sa.Float()),
    ("subtype", sa.String(16)),
    ("subtype_threshold", sa.Float()),
    ("map_grid", sa.Text()),
)


def upgrade() -> None:
    # Nullable additions only: both SQLite and PostgreSQL add them without copying the table.
    for name, kind in PREDICTION_COLUMNS:
        op.add_column("predictions", sa.Column(name, kind, nullable=True))
    op.add_column("reviews", sa.Column("subtype_finding", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as reviews:
        reviews.drop_column("subtype_finding")
    with op.batch_alter_table("predictions") as predictions:
        for name, _kind in reversed(PREDICTION_COLUMNS):
            predictions.drop_column(name)
