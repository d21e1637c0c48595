"""The training side of the data loop: list and download the captures devices uploaded.

A capture is ``<prefix><device>/<YYYY>/<MM>/<DD>/<id>.jpg`` plus its Ground Truth manifest line ``<id>.manifest``,
in S3 (the artifact bucket's captures/ prefix) or in Azure Blob Storage (the container the blob module tiers
to). ``pull`` writes the images under ``out/`` (same relative keys) and ``out/manifest.jsonl``, the lines in
key order: a SageMaker Ground Truth input manifest whose ``source-ref`` still names the cloud copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..core.errors import EdgeInferError


@dataclass(frozen=True)
class Entry:
    key: str
    size: int


class Bucket(Protocol):
    def list(self, prefix: str) -> Iterator[Entry]: ...

    def read(self, key: str) -> bytes: ...


class S3Bucket:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client, self.bucket = client, bucket

    def list(self, prefix: str) -> Iterator[Entry]:
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield Entry(obj["Key"], int(obj["Size"]))

    def read(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


class BlobContainer:
    def __init__(self, container: Any) -> None:
        self._container = container

    def list(self, prefix: str) -> Iterator[Entry]:
        for blob in self._container.list_blobs(name_starts_with=prefix):
            yield Entry(blob.name, int(blob.size))

    def read(self, key: str) -> bytes:
        return self._container.download_blob(key).readall()


def captures(store: Bucket, prefix: str = "captures/", device: str | None = None) -> list[tuple[str, Entry, bool]]:
    """(capture key without suffix, its image entry, whether its manifest line arrived), in key order."""
    if not prefix.startswith("captures/"):
        raise EdgeInferError(f"prefix {prefix!r} is outside captures/", "pass --prefix captures/ or a folder below it")
    where = f"{prefix}{device}/" if device else prefix
    images: dict[str, Entry] = {}
    lines: set[str] = set()
    for e in store.list(where):
        if e.key.endswith(".jpg"):
            images[e.key.removesuffix(".jpg")] = e
        elif e.key.endswith(".manifest"):
            lines.add(e.key.removesuffix(".manifest"))
    return [(k, images[k], k in lines) for k in sorted(images)]


def pull(store: Bucket, out: Path, prefix: str = "captures/", device: str | None = None) -> int:
    """Download every complete capture (image and manifest line) under ``out``; returns how many."""
    out.mkdir(parents=True, exist_ok=True)
    lines: list[bytes] = []
    for key, _entry, complete in captures(store, prefix, device):
        if not complete:
            continue  # still uploading: its line follows the image
        target = out / key
        if ".." in Path(key).parts:
            raise EdgeInferError(f"refusing the key {key!r}", "keys name no parent folders")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.with_suffix(".jpg").write_bytes(store.read(f"{key}.jpg"))
        lines.append(store.read(f"{key}.manifest").rstrip(b"\n") + b"\n")
    (out / "manifest.jsonl").write_bytes(b"".join(lines))
    return len(lines)
