"""Accounts: users, their sessions and API tokens, the audit trail, sign-in throttles,
and the uploader of each result (empty for results made before accounts).

Revision ID: 0003_accounts
Revises: 0002_stored_files
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_accounts"
down_revision = "0002_stored_files"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("display_name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_login_at", nullable=True),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_seen_at"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        _timestamp("created_at"),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("client_address", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(255), nullable=True),
    )
    for column in ("created_at", "user_id", "action"):
        op.create_index(f"ix_audit_events_{column}", "audit_events", [column])
    op.create_table(
        "login_throttles",
        sa.Column("bucket", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        _timestamp("last_failure_at"),
        _timestamp("locked_until", nullable=True),
    )
    # Batch mode: SQLite cannot add a foreign key to an existing table, so it is copied.
    with op.batch_alter_table("predictions") as predictions:
        predictions.add_column(sa.Column("uploaded_by_id", sa.Integer(), nullable=True))
        predictions.create_foreign_key(
            "fk_predictions_uploaded_by_id_users", "users", ["uploaded_by_id"], ["id"]
        )
        predictions.create_index("ix_predictions_uploaded_by_id", ["uploaded_by_id"])


def downgrade() -> None:
    with op.batch_alter_table("predictions") as predictions:
        predictions.drop_index("ix_predictions_uploaded_by_id")
        predictions.drop_constraint("fk_predictions_uploaded_by_id_users", type_="foreignkey")
        predictions.drop_column("uploaded_by_id")
    op.drop_table("login_throttles")
    for column in ("created_at", "user_id", "action"):
        op.drop_index(f"ix_audit_events_{column}", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_table("users")
