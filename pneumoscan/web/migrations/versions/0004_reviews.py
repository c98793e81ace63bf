"""Review loop: reviews of results, refusal counts per day and reason, site
thresholds, and per result its case reference, raw logit, gate reading (for drift) and the
site threshold it was judged with (empty when the model card's was used).

Revision ID: 0004_reviews
Revises: 0003_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_reviews"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "site_thresholds",
        sa.Column("id", sa.Integer(), primary_key=True),
        _timestamp("created_at"),
        sa.Column("set_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("previous_threshold", sa.Float(), nullable=False),
        sa.Column("reviewed_normal", sa.Integer(), nullable=False),
        sa.Column("reviewed_pneumonia", sa.Integer(), nullable=False),
        sa.Column("interval_low", sa.Float(), nullable=True),
        sa.Column("interval_high", sa.Float(), nullable=True),
        sa.Column("sensitivity", sa.Float(), nullable=True),
        sa.Column("specificity", sa.Float(), nullable=True),
    )
    op.create_index("ix_site_thresholds_created_at", "site_thresholds", ["created_at"])
    op.create_index("ix_site_thresholds_model_version", "site_thresholds", ["model_version"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "prediction_id",
            sa.String(36),
            sa.ForeignKey("predictions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("finding", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        _timestamp("created_at"),
        sa.UniqueConstraint("prediction_id", "version"),
    )
    for column in ("prediction_id", "reviewer_id", "created_at"):
        op.create_index(f"ix_reviews_{column}", "reviews", [column])
    op.create_table(
        "refusal_counts",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("reason", sa.String(120), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    # Batch mode: SQLite cannot add a foreign key to an existing table, so it is copied.
    with op.batch_alter_table("predictions") as predictions:
        predictions.add_column(sa.Column("case_reference", sa.String(64), nullable=True))
        predictions.add_column(sa.Column("logit", sa.Float(), nullable=True))
        predictions.add_column(sa.Column("gate_reading", sa.JSON(), nullable=True))
        predictions.add_column(sa.Column("site_threshold_id", sa.Integer(), nullable=True))
        predictions.create_foreign_key(
            "fk_predictions_site_threshold_id_site_thresholds",
            "site_thresholds",
            ["site_threshold_id"],
            ["id"],
        )
        predictions.create_index("ix_predictions_case_reference", ["case_reference"])


def downgrade() -> None:
    with op.batch_alter_table("predictions") as predictions:
        predictions.drop_index("ix_predictions_case_reference")
        predictions.drop_constraint("fk_predictions_site_threshold_id_site_thresholds", type_="foreignkey")
        for column in ("site_threshold_id", "gate_reading", "logit", "case_reference"):
            predictions.drop_column(column)
    op.drop_table("refusal_counts")
    for column in ("prediction_id", "reviewer_id", "created_at"):
        op.drop_index(f"ix_reviews_{column}", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_site_thresholds_model_version", table_name="site_thresholds")
    op.drop_index("ix_site_thresholds_created_at", table_name="site_thresholds")
    op.drop_table("site_thresholds")
