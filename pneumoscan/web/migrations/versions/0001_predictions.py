"""The predictions table exactly as the code before migrations created it.

IF NOT EXISTS, so a database made by that code (tables, no alembic_version) is adopted with its
rows untouched and then carried forward by the later revisions.

Revision ID: 0001_predictions
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_predictions"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("original_filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("source_format", sa.String(16), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("inference_ms", sa.Float(), nullable=False),
        sa.Column("image_path", sa.String(255), nullable=False),
        sa.Column("heatmap_path", sa.String(255), nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_predictions_created_at", table_name="predictions")
    op.drop_table("predictions")
