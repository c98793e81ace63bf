"""Image and heatmap bytes in the database, for STORAGE=database.

Revision ID: 0002_stored_files
Revises: 0001_predictions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_stored_files"
down_revision = "0001_predictions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column(
            "prediction_id",
            sa.String(36),
            sa.ForeignKey("predictions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_stored_files_prediction_id", "stored_files", ["prediction_id"])


def downgrade() -> None:
    op.drop_index("ix_stored_files_prediction_id", table_name="stored_files")
    op.drop_table("stored_files")
