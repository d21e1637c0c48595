"""The data loop's capture queue and uploads: to S3 (boto3 through netguard, moto's server over TLS) and to the
Azure Blob Storage module (azure-storage-blob through netguard, Azurite from npm), with the connection down for a
while and back. The queue never exceeds its cap (oldest evicted, counted), and nothing is uploaded twice."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient

from edgeinfer.core.captures.config import BlobStore, CapturesConfig, S3Store
from edgeinfer.core.captures.queue import CaptureQueue
from edgeinfer.core.captures.service import Capturer
from edgeinfer.core.captures.uploader import Uploader, store_for
from edgeinfer.core.netguard import Outbound

from .frames import context, result
from .servers import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, MotoTLS


def test_the_queue_keeps_to_its_cap_evicting_the_oldest(tmp_path: Path) -> None:
    queue = CaptureQueue(tmp_path / "q", max_bytes=3000, max_files=3)
    ids = [queue.add(b"x" * 500, {"n": i}) for i in range(6)]
    assert all(ids) and len(queue) == 3 and queue.evicted == 3
    assert queue.ids() == sorted(ids)[-3:], "the newest three stay"
    assert sum(p.stat().st_size for p in (tmp_path / "q").iterdir()) <= 3000
    assert queue.add(b"x" * 4000, {}) is None and queue.refused == 1, "larger than the cap: refused, nothing evicted"
    (tmp_path / "q" / "99999999999999-dead.jpg").write_bytes(b"half")  # a crash before the commit mark
    again = CaptureQueue(tmp_path / "q", max_bytes=3000, max_files=3)
    assert again.ids() == queue.ids()


def fill(capturer: Capturer, n: int, start: int = 0) -> list[str]:
    return [cid for i in range(start, start + n)
            if (cid := capturer.capture(result(i, 0.4), result(i, 0.4).image, "uncertain", context())) is not None]


def run_outage(store: Any, tmp_path: Path, down: Any, up: Any) -> tuple[Uploader, Capturer, list[str]]:
    """Capture while the store is down (more than the cap holds), bring it back, wait for the queue to empty."""
    cfg = CapturesConfig(enabled=True, max_files=4, max_per_minute=100)
    queue = CaptureQueue(tmp_path / "captures", cfg.max_bytes, cfg.max_files)
    uploader = Uploader(queue, store, "captures/", interval_s=60, timeout_s=5)
    capturer = Capturer(cfg, queue, uploader)
    down()
    uploader.start()
    try:
        fill(capturer, 6)
        assert uploader.wait(lambda u: u.failed >= 1, 30), "the uploader tried while the store was down"
        assert len(queue) == 4 and queue.evicted == 2, "the queue kept to its cap while offline"
        kept = queue.ids()
        up()
        uploader.wake()
        assert uploader.wait(lambda u: u.uploaded == 4, 60)
        assert len(queue) == 0
        fill(capturer, 1, start=10)  # once back, a new capture goes at once
        assert uploader.wait(lambda u: u.uploaded == 5, 60)
    finally:
        uploader.close()
    return uploader, capturer, [*kept, *queue.ids()]


def test_captures_reach_the_s3_captures_prefix_once_each_after_an_outage(moto: MotoTLS, pki, tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=moto.url, verify=str(pki.ca), region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    moto.requests.clear()
    settings = S3Store(bucket="artifacts", region="us-east-1", endpoint_url=moto.url, ca_file=str(pki.ca))
    store = store_for(settings, Outbound(hosts=("localhost",), setting="captures.hosts"))
    _, capturer, _ = run_outage(store, tmp_path, moto.stop, moto.start)
    puts = Counter(path for method, path in moto.requests if method == "PUT")
    assert set(puts.values()) == {1}, f"each object written once: {puts}"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"])
    assert len(keys) == 10 and all(k.startswith("captures/dev-1/") for k in keys)
    manifest = next(k for k in keys if k.endswith(".manifest"))
    line = json.loads(s3.get_object(Bucket="artifacts", Key=manifest)["Body"].read())
    assert line["source-ref"] == f"s3://artifacts/{manifest.removesuffix('.manifest')}.jpg"
    meta = line["edgeinfer-metadata"]
    assert meta["reason"] == "uncertain" and meta["model"] == {"name": "faces", "version": "1.0.0"}
    assert meta["local"][0]["score"] == 0.4 and meta["device"] == "dev-1"
    assert capturer.state()["uploaded"] == 5 and capturer.state()["evicted"] == 2


def test_captures_reach_the_blob_module_once_each_after_an_outage(azurite: Azurite, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEINFER_BLOB_KEY", AZURITE_KEY)
    settings = BlobStore(account_name=AZURITE_ACCOUNT, endpoint=azurite.url)
    store = store_for(settings, Outbound(hosts=("127.0.0.1",), schemes=frozenset({"http", "https"}),
                                         setting="captures.hosts"))
    uploader, _, _ = run_outage(store, tmp_path, azurite.stop, azurite.start)
    service = BlobServiceClient(azurite.url, credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY})
    blobs = list(service.get_container_client("edgeinfer-captures").list_blobs())
    assert len(blobs) == 10 and all(b.name.startswith("captures/dev-1/") for b in blobs)
    assert uploader.uploaded == 5 and uploader.failed >= 1
    manifest = next(b.name for b in blobs if b.name.endswith(".manifest"))
    line = json.loads(service.get_blob_client("edgeinfer-captures", manifest).download_blob().readall())
    assert line["source-ref"] == f"{azurite.url}/edgeinfer-captures/{manifest.removesuffix('.manifest')}.jpg"


def test_a_blob_endpoint_outside_the_hosts_refuses_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeinfer.core.netguard import Blocked

    monkeypatch.setenv("EDGEINFER_BLOB_KEY", AZURITE_KEY)
    with pytest.raises(Blocked, match=r"not in captures\.hosts"):
        store_for(BlobStore(account_name="acct", endpoint="http://elsewhere.example:11002/acct"),
                  Outbound(hosts=("azureblobstorageoniotedge",), schemes=frozenset({"http"}),
                           setting="captures.hosts"))


def test_captures_ls_and_pull_give_the_training_side_a_ground_truth_manifest(moto: MotoTLS, pki, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import run_cli

    s3 = boto3.client("s3", endpoint_url=moto.url, verify=str(pki.ca), region_name="us-east-1")
    s3.create_bucket(Bucket="training")
    settings = S3Store(bucket="training", region="us-east-1", endpoint_url=moto.url, ca_file=str(pki.ca))
    store = store_for(settings, Outbound(hosts=("localhost",), setting="captures.hosts"))
    queue = CaptureQueue(tmp_path / "captures", 1 << 20, 100)
    fill(Capturer(CapturesConfig(enabled=True), queue, None), 5)
    assert Uploader(queue, store, "captures/", 60, 5).upload_pass() == 5
    s3.put_object(Bucket="training", Key="captures/dev-1/2026/01/01/late.jpg", Body=b"jpeg")  # its line not yet
    env = {"AWS_CA_BUNDLE": str(pki.ca)}
    listed = run_cli("captures", "ls", "--s3", "training", "--endpoint-url", moto.url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "6 captures" in listed.stdout and "not yet" in listed.stdout
    pulled = run_cli("captures", "pull", str(tmp_path / "pulled"), "--s3", "training", "--endpoint-url", moto.url,
                     "--device", "dev-1", env=env)
    assert pulled.returncode == 0, pulled.stderr
    lines = [json.loads(x) for x in (tmp_path / "pulled" / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and all(x["source-ref"].startswith("s3://training/captures/dev-1/") for x in lines)
    jpgs = list((tmp_path / "pulled").rglob("*.jpg"))
    assert len(jpgs) == 5 and all(p.read_bytes()[:2] == b"\xff\xd8" for p in jpgs)


def test_captures_in_one_millisecond_keep_their_order(tmp_path: Path) -> None:
    """Ids sort by time; with a clock that does not move, the order is still the order of arrival (eviction takes
    the oldest, not a random one of the same millisecond), also after a restart."""
    queue = CaptureQueue(tmp_path / "q", max_bytes=1 << 20, max_files=3, clock=lambda: 1_700_000_000.0)
    ids = [queue.add(b"x" * 10, {"n": i}) for i in range(5)]
    assert queue.ids() == ids[-3:] and queue.evicted == 2
    again = CaptureQueue(tmp_path / "q", max_bytes=1 << 20, max_files=3, clock=lambda: 1_700_000_000.0)
    newer = again.add(b"x" * 10, {"n": 5})
    assert newer is not None and again.ids() == [*ids[-2:], newer]
