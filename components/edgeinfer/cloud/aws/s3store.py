"""Immutable S3 objects: a key, once written, only ever holds the same bytes.

Devices verify artifacts against the digest Greengrass recorded when the component was created, so
overwriting an artifact breaks every device that has not downloaded it yet. Uploads are therefore
conditional (``If-None-Match: *``); a key that already holds the same bytes is reused, one that
holds different bytes is an error naming both hashes. Keys are content-addressed where the content
is known first (``.../<sha256>/file``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ...core.modelpkg import sha256_file
from .errors import ArtifactError, client_error, is_not_found

log = logging.getLogger(__name__)
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>.+)$")


@dataclass(frozen=True, slots=True)
class Stored:
    uri: str
    sha256: str
    size: int
    created: bool  # False: the same bytes were already there


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    m = S3_URI.match(uri or "")
    if not m:
        raise ArtifactError(f"{uri!r} is not an s3://bucket/key URI", "point the registry entry at an S3 object")
    return m.group("bucket"), m.group("key")


def _remote_sha256(s3: Any, bucket: str, key: str, head: dict[str, Any]) -> str:
    digest = (head.get("Metadata") or {}).get("sha256")
    if digest:
        return str(digest)
    h = hashlib.sha256()  # written by something else: hash what is there
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        h.update(chunk)
    return h.hexdigest()


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if client_error(exc)[0] == "NoSuchBucket":
            raise ArtifactError(f"the S3 bucket {bucket} does not exist (or is in another account)",
                                f"create it (aws s3 mb s3://{bucket}) or pass another --bucket") from exc
        if is_not_found(exc):
            return None
        raise


def put_immutable(s3: Any, bucket: str, key: str, path: Path, content_type: str = "application/zip") -> Stored:
    """Upload ``path`` to ``bucket/key`` unless the same bytes are there; refuse to overwrite different ones."""
    digest, size, uri = sha256_file(path), path.stat().st_size, s3_uri(bucket, key)
    existing = head(s3, bucket, key)
    if existing is None:
        try:
            with path.open("rb") as body:
                s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*",
                              Metadata={"sha256": digest})
            log.info("uploaded %s (%d bytes)", uri, size)
            return Stored(uri, digest, size, created=True)
        except ClientError as exc:
            code, _ = client_error(exc)
            if code not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
            existing = s3.head_object(Bucket=bucket, Key=key)  # written meanwhile: compare below
    theirs = _remote_sha256(s3, bucket, key, existing)
    if theirs != digest:
        raise ArtifactError(f"{uri} already holds different bytes (sha256 {theirs[:12]}…, this file {digest[:12]}…)",
                            "artifact keys are immutable (devices verify them): publish under a new version "
                            "instead of overwriting")
    log.info("reusing %s (same sha256)", uri)
    return Stored(uri, digest, size, created=False)


def download(s3: Any, uri: str, dest: Path) -> Path:
    bucket, key = parse_s3_uri(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(bucket, key, str(dest))
    except ClientError as exc:
        if is_not_found(exc):
            raise ArtifactError(f"the artifact {uri} does not exist", "register the model again, or fix the "
                                "registry entry's ModelDataUrl") from exc
        raise
    return dest
