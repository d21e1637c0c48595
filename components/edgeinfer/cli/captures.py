"""`edgeinfer captures ls|pull`: what devices uploaded to the data loop, for the training side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.table import Table

from ..cloud import captures as cap
from ..core.errors import ConfigError
from .common import console

captures_app = typer.Typer(no_args_is_help=True)

S3 = Annotated[str | None, typer.Option("--s3", help="Bucket: the artifact bucket (captures/ prefix)")]
ENDPOINT = Annotated[str | None, typer.Option(help="S3 endpoint URL (a stand-in or VPC endpoint)")]
BLOB = Annotated[str | None, typer.Option("--blob-url", help="Blob account URL, e.g. https://ACCOUNT.blob.core."
                                          "windows.net (credentials: AZURE_STORAGE_KEY, else azure-identity)")]
CONTAINER = Annotated[str, typer.Option(help="Blob container")]
PREFIX = Annotated[str, typer.Option(help="Key prefix, under captures/")]
DEVICE = Annotated[str | None, typer.Option(help="Only this device's captures")]


def _store(s3: str | None, endpoint_url: str | None, blob_url: str | None, container: str) -> cap.Bucket:
    if (s3 is None) == (blob_url is None):
        raise ConfigError("name one store", "pass --s3 BUCKET or --blob-url URL")
    if s3 is not None:
        import boto3

        return cap.S3Bucket(boto3.client("s3", endpoint_url=endpoint_url), s3)
    import os

    from azure.storage.blob import BlobServiceClient

    assert blob_url is not None
    credential: Any
    if key := os.environ.get("AZURE_STORAGE_KEY"):
        parts = urlsplit(blob_url)  # https://ACCOUNT.blob..., or http://host:port/ACCOUNT (the emulator, the module)
        account = parts.path.strip("/").split("/")[0] or (parts.hostname or "").split(".")[0]
        credential = {"account_name": account, "account_key": key}
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return cap.BlobContainer(BlobServiceClient(blob_url, credential=credential).get_container_client(container))


@captures_app.command("ls")
def ls(s3: S3 = None, endpoint_url: ENDPOINT = None, blob_url: BLOB = None,
       container: CONTAINER = "edgeinfer-captures", prefix: PREFIX = "captures/", device: DEVICE = None) -> None:
    """List the captures that arrived (image, size, whether its manifest line is there)."""
    rows = cap.captures(_store(s3, endpoint_url, blob_url, container), prefix, device)
    table = Table(title=f"{len(rows)} captures")
    for col in ("capture", "bytes", "manifest"):
        table.add_column(col)
    for key, entry, complete in rows:
        table.add_row(key, str(entry.size), "yes" if complete else "not yet")
    console.print(table)


@captures_app.command()
def pull(out: Annotated[Path, typer.Argument(help="Folder for the images and manifest.jsonl")],
         s3: S3 = None, endpoint_url: ENDPOINT = None, blob_url: BLOB = None,
         container: CONTAINER = "edgeinfer-captures", prefix: PREFIX = "captures/", device: DEVICE = None) -> None:
    """Download the complete captures and write manifest.jsonl (a Ground Truth input manifest)."""
    n = cap.pull(_store(s3, endpoint_url, blob_url, container), out, prefix, device)
    console.print(f"{n} captures -> {out} (manifest: {out / 'manifest.jsonl'})")
