"""Rollout status at fleet scale: one refresh of a two-ring rollout over 10,000 devices, on each cloud.

    .venv/bin/python bench/bench_rollout_status.py [--devices 10000] [--rounds 5]

AWS: moto (IoT jobs, CloudWatch) and the botocore-validated Greengrass v2 fake, the IoT job's process
details kept as AWS IoT keeps them; Azure: the real azure-iot-hub client against the local HTTPS IoT Hub,
which computes each layered deployment's metrics over 10,000 module twins per request (work the real
service does on its side). Prints calls and wall time per refresh (median of ``--rounds``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests/ holds the fakes

from edgeinfer.cloud.rollout import engine
from edgeinfer.cloud.rollout.plan import parse_plan

PLAN = {"name": "bench", "model": "faces", "model_version": "3", "health": {"min_reported_pct": 90},
        "rings": [{"name": "canary", "target": "canary", "soak_s": 0}, {"name": "fleet", "target": "fleet"}]}
REGION = "eu-west-1"


def timed(fn: Any, rounds: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def aws(n: int, rounds: int) -> None:
    import boto3
    from moto import mock_aws

    from edgeinfer.cloud.aws.clients import AwsClients
    from edgeinfer.cloud.aws.rollbacks import CloudWatchRollbacks
    from edgeinfer.cloud.aws.rollout import GreengrassRollout
    from tests.greengrass.fakes.greengrassv2 import FakeGreengrassV2
    from tests.greengrass.rollout_sim import CallCounter

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(k, "testing")
    with mock_aws():
        s = boto3.Session(region_name=REGION)
        iot, cw, sts = s.client("iot"), s.client("cloudwatch"), s.client("sts")
        gg = FakeGreengrassV2(s.client("s3"), iot, REGION, sts.get_caller_identity()["Account"])
        clients = AwsClients(s3=None, sagemaker=None, iot=iot, sts=sts, greengrass=gg, region=REGION, cloudwatch=cw)
        plan = parse_plan(PLAN)
        sizes = {"canary": n // 100, "fleet": n - n // 100}
        for ring in plan.rings:
            arn = iot.create_thing_group(thingGroupName=ring.target)["thingGroupArn"]
            for i in range(sizes[ring.target]):
                gg.register_core_device(f"{ring.target}-{i}", [arn])
            dep = gg.create_deployment(targetArn=arn, deploymentName=plan.deployment_name(ring),
                                       components={"aws.greengrass.Nucleus": {"componentVersion": "2.14.0"}})
            for i in range(sizes[ring.target]):
                gg.report(f"{ring.target}-{i}", dep["deploymentId"], "FAILED" if i % 97 == 0 else "SUCCEEDED")
        driver = GreengrassRollout(clients, CloudWatchRollbacks(cw, "edgeinfer/bench"))
        counter = CallCounter(iot, cw, greengrass=gg)
        t, st = timed(lambda: engine.status(driver, plan), rounds)
        calls = counter.total // rounds
        print(f"aws   {n} devices, {len(plan.rings)} rings: {calls} calls per refresh ({counter.detail()} over "
              f"{rounds} rounds), {t * 1000:.1f} ms; " + ", ".join(
                  f"{v.ring.name} {v.progress.targeted}/{v.progress.succeeded}/{v.progress.failed}" for v in st.rings))


def azure(n: int, rounds: int) -> None:
    from edgeinfer.cloud.azure.deploy import connect
    from edgeinfer.cloud.azure.manifest import ManifestOptions, build_manifest
    from edgeinfer.cloud.azure.rollout import IotHubRollout
    from tests.azure.iothub_rest import FakeIotHubRest
    from tests.telemetry.pki import make_pki

    pki = make_pki(Path(tempfile.mkdtemp(prefix="bench-pki-")))
    hub = FakeIotHubRest(pki).start()
    os.environ["REQUESTS_CA_BUNDLE"] = str(pki.ca)
    os.environ["IOTHUB_CONNECTION_STRING"] = hub.connection_string()
    try:
        plan = parse_plan(PLAN)
        model = {"name": "faces", "version": "3", "uri": "https://models.example.com/f.zip", "sha256": "ab" * 32}
        driver = IotHubRollout(connect(), build_manifest(ManifestOptions(model=model)))
        for ring, size in (("canary", n // 100), ("fleet", n - n // 100)):
            cid = driver.deploy_ring(plan, plan.ring(ring))
            for i in range(size):
                d = f"{ring}-{i}"
                hub.devices.add(d)
                hub.device_twins[d] = {"tags": {"ring": ring}}
                applied = {cid: {"status": "Applied"}}
                hub.module_twins[(d, "$edgeAgent")] = {"configurations": applied, "properties": {
                    "desired": {"$version": 2}, "reported": {"lastDesiredVersion": 2, "lastDesiredStatus": {
                        "code": 200}}}}
                hub.module_twins[(d, "edgeinfer")] = {"configurations": applied, "properties": {"reported": {
                    "model": {"name": "faces", "version": "3"}, "config": {"status": "applied"}}}}
        before = len(hub.calls)
        t, st = timed(lambda: engine.status(driver, plan, lambda: dt.datetime.now(dt.timezone.utc)), rounds)
        calls = (len(hub.calls) - before) // rounds
        print(f"azure {n} devices, {len(plan.rings)} rings: {calls} calls per refresh, {t * 1000:.1f} ms (the "
              f"local hub computing 8 metric queries over {2 * n} module twins included); " + ", ".join(
                  f"{v.ring.name} {v.progress.targeted}/{v.progress.succeeded}" for v in st.rings))
    finally:
        hub.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    aws(args.devices, args.rounds)
    azure(args.devices, args.rounds)


if __name__ == "__main__":
    main()
