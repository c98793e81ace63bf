"""What each JSON file of an export-data archive holds, one record type per file, checked whole
before import-data writes anything.

People travel as emails (account ids differ between databases). A new nullable column is one
optional line in its record, so archives made before it still import. The stored file names in a
result are checked against the names the store would make from its id; import-data makes them
again itself and never uses a name or path from the archive.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from pneumoscan.web.models import FINDINGS, ROLES
from pneumoscan.web.store_names import CONTENT_TYPES, HEATMAP_SUFFIX

# Fields that name an account by email; the tables keep its id instead.
PEOPLE = frozenset({"uploaded_by", "reviewer", "set_by", "user"})


class Record(BaseModel):
    """Unknown fields are refused rather than dropped, so nothing in an archive is lost quietly."""

    model_config = ConfigDict(extra="forbid", strict=False)


class ResultRecord(Record):
    """A row of predictions.json: a result, as the table `predictions` holds it."""

    id: str
    created_at: AwareDatetime
    original_filename: str = Field(max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    source_format: str = Field(max_length=16)
    probability: float = Field(ge=0, le=1)
    label: str = Field(max_length=16)
    threshold: float
    model_version: str = Field(max_length=128)
    inference_ms: float
    image_path: str
    heatmap_path: str
    uploaded_by: str | None = None
    case_reference: str | None = Field(default=None, max_length=64)
    logit: float | None = None
    gate_reading: dict[str, Any] | None = None
    site_threshold_id: int | None = None
    viral_probability: float | None = None
    subtype: str | None = Field(default=None, pattern=r"^(BACTERIAL|VIRAL)$")
    subtype_threshold: float | None = None
    map_grid: str | None = None

    @field_validator("id")
    @classmethod
    def _canonical_uuid(cls, value: str) -> str:
        if str(uuid.UUID(value)) != value:
            raise ValueError("must be a lower-case UUID")
        return value

    @model_validator(mode="after")
    def _names_from_id(self) -> ResultRecord:
        if self.image_suffix not in CONTENT_TYPES:
            raise ValueError(f"image_path must be the id and a stored suffix, got {self.image_path!r}")
        if self.heatmap_path != f"{self.id}{HEATMAP_SUFFIX}":
            raise ValueError(f"heatmap_path must be {self.id}{HEATMAP_SUFFIX}, got {self.heatmap_path!r}")
        return self

    @property
    def image_suffix(self) -> str:
        """The image's stored suffix (.png, .jpg, ...), or '' if image_path is not `<id><suffix>`."""
        head, _, suffix = self.image_path.rpartition(".")
        return f".{suffix}" if head == self.id else ""


class ReviewRecord(Record):
    """A row of reviews.json: one version of a clinician's review of a result."""

    id: int
    prediction_id: str
    version: int = Field(gt=0)
    finding: str = Field(pattern=f"^({'|'.join(FINDINGS)})$")
    note: str | None = None
    reviewer: str | None = None
    created_at: AwareDatetime
    subtype_finding: str | None = Field(default=None, max_length=16)


class SiteThresholdRecord(Record):
    """A row of site_thresholds.json: one change of the site threshold."""

    id: int
    created_at: AwareDatetime
    set_by: str | None = None
    model_version: str = Field(max_length=128)
    threshold: float | None = None
    previous_threshold: float
    reviewed_normal: int = Field(ge=0)
    reviewed_pneumonia: int = Field(ge=0)
    interval_low: float | None = None
    interval_high: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None


class RefusalRecord(Record):
    """A row of refusal_counts.json: refused uploads per reason and day."""

    day: date
    reason: str = Field(max_length=120)
    count: int = Field(ge=0)


class AuditRecord(Record):
    """A row of audit_events.json; imported events get new ids after the target's own."""

    created_at: AwareDatetime
    user: str | None = None
    action: str = Field(max_length=32)
    target_id: str | None = Field(default=None, max_length=64)
    client_address: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, max_length=255)


class AccountRecord(Record):
    """A row of accounts.json (only with --include-accounts): an account with its password hash."""

    email: str = Field(max_length=254)
    display_name: str = Field(max_length=120)
    role: str = Field(pattern=f"^({'|'.join(ROLES)})$")
    active: bool
    password_hash: str = Field(max_length=255)
    created_at: AwareDatetime
    last_login_at: AwareDatetime | None = None


# Each archive file and its record type, in the order import-data writes them (accounts first:
# the other files name people by email; site thresholds before the results that point at them).
TABLES: dict[str, type[Record]] = {
    "accounts.json": AccountRecord,
    "site_thresholds.json": SiteThresholdRecord,
    "predictions.json": ResultRecord,
    "reviews.json": ReviewRecord,
    "refusal_counts.json": RefusalRecord,
    "audit_events.json": AuditRecord,
}
