"""STORAGE=s3: images and heatmaps as objects in an S3-compatible bucket, shared by every instance.

The bucket is private: files are served only through the app (access checks, audit, caching
headers), never by a bucket URL. Objects are `S3_PREFIX + <uuid>.<ext>`, the names the other
stores use. A put is whole or absent (S3 has no half-written objects), so there are no
temporaries; like the folder store, objects are placed before the row commits and removed if
it fails, and the orphan sweep removes those a killed worker left. Credentials and region come
from boto3's own `AWS_*` variables; S3_ENDPOINT_URL names a service other than AWS.
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import cached_property
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from pneumoscan.web import store_names
from pneumoscan.web.store_names import CONTENT_TYPES, ORPHAN_WINDOW_SECONDS, is_stored_name

# S3's own limit for one DeleteObjects call.
DELETE_BATCH = 1000
PROBE_PREFIX = ".healthz-"

log = logging.getLogger(__name__)


class S3Store:
    """Objects under a key prefix in one bucket; names are made by the app, never by a client."""

    leaves_orphans = True

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str = "") -> None:
        if not bucket:
            raise ValueError("STORAGE=s3 needs S3_BUCKET")
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url or None

    @cached_property
    def client(self):
        """Made on first use, in the worker: a client's connections must not cross a fork."""
        retries = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        return boto3.client("s3", endpoint_url=self.endpoint_url, config=retries)

    def key(self, name: str) -> str:
        return self.prefix + name

    def ensure(self) -> None:
        """Nothing: the bucket is made (private) when the service is set up, not by the app."""

    def read(self, name: str, session: Session) -> bytes | None:
        if not is_stored_name(name):
            return None
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def put(self, files: dict[str, bytes], session: Session | None = None) -> list[str]:
        """Upload every file or none: on any failure the ones already placed are deleted."""
        placed: list[str] = []
        try:
            for name, data in files.items():
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.key(name),
                    Body=data,
                    ContentType=CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream"),
                )
                placed.append(name)
        except BaseException:
            self.remove(placed)
            raise
        return placed

    def remove(self, names: list[str]) -> None:
        for start in range(0, len(names), DELETE_BATCH):
            batch = [{"Key": self.key(name)} for name in names[start : start + DELETE_BATCH]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def delete(self, names: list[str], session: Session) -> None:
        """Nothing yet: objects cannot be rolled back, so the caller removes them after its commit."""

    def settled_files(self, window: float | None = ORPHAN_WINDOW_SECONDS) -> dict[str, list[str]]:
        """Objects written more than ten minutes (and, with a `window`, less than that many seconds)
        ago, by the prediction id that starts their name, as the folder store does. An unreachable
        bucket gives none (and a warning): the sweep waits for its next turn rather than stopping
        the start, and the readiness probe reports the bucket."""
        newest = time.time() - store_names.ORPHAN_SECONDS
        oldest = time.time() - window if window is not None else float("-inf")
        groups: dict[str, list[str]] = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.prefix) :]
                    if is_stored_name(name) and oldest < item["LastModified"].timestamp() < newest:
                        groups.setdefault(name.split(".", 1)[0], []).append(name)
        except (BotoCoreError, ClientError) as exc:
            log.warning("orphan sweep: bucket not listed: %s", type(exc).__name__)
            return {}
        return groups

    def sweep_stale(self) -> int:
        """None to sweep: an object is stored whole or not at all."""
        return 0

    def add_probe_rows(self, connection: Connection, prediction_id: str) -> None:
        """Nothing: this store's objects are not in the database."""

    def files_writable(self, database_state: str) -> str:
        """Puts a small object in the bucket and deletes it again."""
        probe = self.key(f"{PROBE_PREFIX}{uuid.uuid4().hex}")
        try:
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"ok")
            self.client.delete_object(Bucket=self.bucket, Key=probe)
            return "ok"
        except (BotoCoreError, ClientError) as exc:
            log.warning("health check: bucket does not take an object: %s", type(exc).__name__)
            return "unavailable"
