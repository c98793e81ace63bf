"""Tables: results and their files (STORAGE=database), clinicians' reviews of results, refusal
counts, site thresholds, accounts with their sessions and API tokens, the audit trail, login
throttles."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Timestamps always come back timezone-aware in UTC, even from SQLite which drops the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Result(Base):
    """The stored result of one analysed upload; the two file paths name its files in the store."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    original_filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    source_format: Mapped[str] = mapped_column(String(16))
    probability: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(128))
    inference_ms: Mapped[float] = mapped_column(Float)
    image_path: Mapped[str] = mapped_column(String(255))
    heatmap_path: Mapped[str] = mapped_column(String(255))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    uploaded_by: Mapped[User | None] = relationship(lazy="joined")
    # From the review loop on; empty for results made before it.
    case_reference: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    logit: Mapped[float | None] = mapped_column(Float, default=None)
    gate_reading: Mapped[dict | None] = mapped_column(JSON, default=None)
    site_threshold_id: Mapped[int | None] = mapped_column(ForeignKey("site_thresholds.id"), default=None)
    # The subtype estimate (BACTERIAL or VIRAL) and the Grad-CAM grid (JSON list of rows); empty
    # for results made before them, and the subtype label also where the main label is NORMAL.
    viral_probability: Mapped[float | None] = mapped_column(Float, default=None)
    subtype: Mapped[str | None] = mapped_column(String(16), default=None)
    subtype_threshold: Mapped[float | None] = mapped_column(Float, default=None)
    map_grid: Mapped[str | None] = mapped_column(Text, default=None)


FINDINGS = ("PNEUMONIA", "NORMAL", "UNSURE")


class Review(Base):
    """A clinician's confirmed finding for a result. A change adds a new version; none is overwritten."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("prediction_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prediction_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("predictions.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    finding: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    reviewer: Mapped[User | None] = relationship(lazy="joined")
    # The clinician's confirmed subtype (BACTERIAL or VIRAL), optional.
    subtype_finding: Mapped[str | None] = mapped_column(String(16), default=None)


class RefusalCount(Base):
    """How many uploads were refused for a reason on a day (UTC); the upload itself is not kept."""

    __tablename__ = "refusal_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(120), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class SiteThreshold(Base):
    """One change of this site's decision threshold for a model version; `threshold` empty means
    reset to the model card's. The latest row for the served model version is the one in use."""

    __tablename__ = "site_thresholds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    model_version: Mapped[str] = mapped_column(String(128), index=True)
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    previous_threshold: Mapped[float] = mapped_column(Float)
    reviewed_normal: Mapped[int] = mapped_column(Integer, default=0)
    reviewed_pneumonia: Mapped[int] = mapped_column(Integer, default=0)
    interval_low: Mapped[float | None] = mapped_column(Float, default=None)
    interval_high: Mapped[float | None] = mapped_column(Float, default=None)
    sensitivity: Mapped[float | None] = mapped_column(Float, default=None)
    specificity: Mapped[float | None] = mapped_column(Float, default=None)
    set_by: Mapped[User | None] = relationship(lazy="joined")


class StoredFile(Base):
    """One image or heatmap under its stored name, for STORAGE=database (see storage.DatabaseStore)."""

    __tablename__ = "stored_files"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    prediction_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("predictions.id", ondelete="CASCADE"), index=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


ROLES = ("clinician", "admin")


class User(Base):
    """A person who signs in; never deleted (the audit trail names them), only deactivated."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    # Flask-Login's user interface.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class UserSession(Base):
    """A signed-in browser: the cookie holds a random id whose hash is here, so ending a session
    server-side (sign-out, deactivation, password change, idle time) makes copies of the cookie useless."""

    __tablename__ = "user_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class ApiToken(Base):
    """A personal API token; only its SHA-256 is stored (the token is random, so no salt is needed)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    user: Mapped[User] = relationship(lazy="joined")


class AuditEvent(Base):
    """Who did what to which target, from where; rows are only ever added (see _append_only)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    action: Mapped[str] = mapped_column(String(32), index=True)
    target_id: Mapped[str | None] = mapped_column(String(64), default=None)
    client_address: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[str | None] = mapped_column(String(255), default=None)
    user: Mapped[User | None] = relationship(lazy="joined")


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(_mapper, _connection, target: AuditEvent) -> None:
    raise PermissionError(f"audit event {target.id} cannot be changed or deleted")


class LoginThrottle(Base):
    """Failed sign-ins per bucket ("account:<email>" or "address:<ip>"), in the database so that
    every worker and instance sees the same count."""

    __tablename__ = "login_throttles"

    bucket: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
