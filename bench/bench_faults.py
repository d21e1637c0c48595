"""Fault soak: one run session (the object the CLI, Greengrass and IoT Edge all drive) for N minutes while
random faults are injected and cleared, measuring what a fleet operator cares about.

Faults: MQTT broker killed and restarted; the state dir's disk filled and freed (a tmpfs, as root);
a bad deployment (a config that passes the schema but cannot start); a bad model (a package whose
decoder does not fit); a camera outage (the HTTP MJPEG stream stops and comes back).

Reports:
* availability: share of wall time with frames being inferred, outside injected camera outages
  (sampled every 250 ms; a sample counts when the frame counter moved within it);
* recovery time after each fault clears: until frames flow again (camera), until telemetry is
  delivered again (broker; disk: filled while the broker is away, so the outbox must grow and cannot),
  how long inference paused (bad deployment / model: should be none);
* events lost: events committed to the outbox that never reached the subscriber after the final drain
  (events the full disk refused are counted apart: they were never committed).

Targets: availability >= 99 %, recovery p99 <= 2 s, 0 lost.

    .venv/bin/python bench/bench_faults.py --minutes 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeinfer.core.config import EdgeInferConfig, cache_dir  # noqa: E402
from edgeinfer.core.demo import demo_packages  # noqa: E402
from edgeinfer.core.errors import EdgeInferError  # noqa: E402
from edgeinfer.core.session import RunSession  # noqa: E402
from tests.faults.packages import edited_package, wrong_strides  # noqa: E402
from tests.faults.stream_servers import MjpegServer  # noqa: E402
from tests.telemetry.mosquitto import Mosquitto, Subscriber  # noqa: E402

SAMPLE_S = 0.25  # several frames of the 15 fps test camera per sample


@dataclass
class Fault:
    kind: str
    start: float
    cleared: float | None = None
    recovered: float | None = None
    note: str = ""

    @property
    def recovery_s(self) -> float | None:
        if self.cleared is None or self.recovered is None:
            return None
        return max(0.0, self.recovered - self.cleared)


@dataclass
class Soak:
    session: RunSession
    broker: Mosquitto
    subscriber: Subscriber
    camera: MjpegServer
    state_dir: Path
    misfit: Path
    samples: list[tuple[float, int, bool]] = field(default_factory=list)  # (t, frames, camera out)
    faults: list[Fault] = field(default_factory=list)
    stored: set[str] = field(default_factory=set)
    camera_out: bool = False
    tmpfs: bool = False

    def frames(self) -> int:
        return int(self.session.stats().get("frames", 0))

    def sample_loop(self, stop: threading.Event) -> None:
        while not stop.wait(SAMPLE_S):
            self.samples.append((time.monotonic(), self.frames(), self.camera_out))

    def until(self, pred: Callable[[], bool], timeout_s: float = 60.0) -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pred():
                return time.monotonic()
            time.sleep(0.01)  # polling counters another thread moves: nothing to wait on
        return None

    def frames_flow(self, timeout_s: float = 60.0) -> float | None:
        n = self.frames()
        return self.until(lambda: self.frames() > n, timeout_s)

    # -- the faults ------------------------------------------------------------------------------
    def broker_outage(self, hold_s: float) -> Fault:
        f = Fault("broker", time.monotonic())
        self.broker.stop()
        time.sleep(hold_s)  # the outage itself: wall time is the point
        self.broker.start()
        f.cleared = time.monotonic()
        got = len(self.subscriber.received)
        f.recovered = self.until(lambda: len(self.subscriber.received) > got)
        return f

    def disk_full(self, hold_s: float) -> Fault:
        """The state dir's disk fills while the broker is away, so the outbox must grow and cannot."""
        f = Fault("disk", time.monotonic())
        if not self.tmpfs:
            f.note = "skipped: the state dir is not a tmpfs (run as root)"
            f.cleared = f.recovered = f.start
            return f
        self.broker.stop()
        ballast = self.state_dir / "ballast"
        with ballast.open("wb") as out:
            try:
                while True:
                    out.write(b"\0" * (1 << 16))
                    out.flush()
            except OSError:
                pass
        time.sleep(hold_s)  # the outage itself
        ballast.unlink()
        self.broker.start()
        f.cleared = time.monotonic()
        got = len(self.subscriber.received)
        f.recovered = max(self.frames_flow() or float("inf"),
                          self.until(lambda: len(self.subscriber.received) > got) or float("inf"))
        if f.recovered == float("inf"):
            f.recovered = None
        return f

    def refused(self, kind: str, attempt: Callable[[], object]) -> Fault:
        """A change that must be refused while inference goes on; recovery = how long frames paused."""
        f = Fault(kind, time.monotonic())
        try:
            attempt()
            f.note = "ACCEPTED (wrong)"
        except EdgeInferError:
            pass
        f.cleared = time.monotonic()
        f.recovered = self.frames_flow()
        return f

    def bad_deployment(self) -> Fault:
        blocker = self.state_dir.parent / "a-regular-file"
        blocker.write_text("x")
        return self.refused("bad-deployment", lambda: self.session.apply_patch({"output": {"dir": str(blocker / "o")}}))

    def bad_model(self) -> Fault:
        return self.refused("bad-model", lambda: self.session.reload_model(str(self.misfit)))

    def camera_outage(self, hold_s: float) -> Fault:
        f = Fault("camera", time.monotonic())
        self.camera_out = True
        self.camera.stop()
        time.sleep(hold_s)  # the outage itself
        self.camera.start()
        f.cleared = time.monotonic()
        f.recovered = self.frames_flow()
        self.camera_out = False
        return f


def availability(samples: list[tuple[float, int, bool]]) -> float:
    moving = total = 0
    for (_, n0, out0), (_, n1, out1) in itertools.pairwise(samples):
        if out0 or out1:
            continue
        total += 1
        moving += n1 > n0
    return moving / total if total else 0.0


def mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False).returncode == 0


def run(minutes: float, seed: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="edgeinfer-soak-"))
    state = work / "state"
    tmpfs = mount_tmpfs(state, "8m")
    try:
        return soak_run(minutes, seed, work, state, tmpfs)
    finally:  # whatever happened, no mount and no folder outlive the soak
        if tmpfs:
            subprocess.run(["umount", "-l", str(state)], check=False)
        shutil.rmtree(work, ignore_errors=True)


def soak_run(minutes: float, seed: int, work: Path, state: Path, tmpfs: bool) -> dict[str, Any]:
    rng = random.Random(seed)
    state.mkdir(parents=True, exist_ok=True)
    pkg = demo_packages(cache_dir())[0]
    bad = edited_package(pkg, work / "bad-model", wrong_strides)
    broker = Mosquitto(work / "broker").start()
    subscriber = Subscriber(broker.port, "edgeinfer/#", client_id="soak-observer").start()
    camera = MjpegServer(fps=15).start()
    cfg = EdgeInferConfig(model={"path": str(pkg), "warmup_runs": 1}, state_dir=str(state),
                          source={"uri": camera.url}, output={"print_detections": False},
                          telemetry={"transport": broker.uri(), "mode": "results", "health_interval_s": 5,
                                     "retry": {"initial_s": 0.1, "max_s": 1.0}, "max_outbox_bytes": 4 << 20})
    session = RunSession(cfg)
    soak = Soak(session, broker, subscriber, camera, state, bad, tmpfs=tmpfs)
    session.start()
    # listeners also see events the outbox refused (seq 0: never committed, counted in write_failed)
    session.telemetry.add_listener(lambda e: soak.stored.add(e.id) if e.seq else None)
    assert soak.frames_flow(60) is not None, "the soak never started inferring"
    stop = threading.Event()
    sampler = threading.Thread(target=soak.sample_loop, args=(stop,), daemon=True)
    sampler.start()
    t_end = time.monotonic() + minutes * 60
    kinds = ["broker", "disk", "bad-deployment", "bad-model", "camera"]
    while time.monotonic() < t_end:
        time.sleep(rng.uniform(2.0, 6.0))  # quiet time between faults
        kind = rng.choice(kinds)
        hold = rng.uniform(1.0, 5.0)
        if kind == "broker":
            fault = soak.broker_outage(hold)
        elif kind == "disk":
            fault = soak.disk_full(hold)
        elif kind == "camera":
            fault = soak.camera_outage(hold)
        else:
            fault = soak.bad_deployment() if kind == "bad-deployment" else soak.bad_model()
        soak.faults.append(fault)
        print(f"{kind:<15} recovery {fault.recovery_s if fault.recovery_s is not None else 'NEVER'} {fault.note}",
              file=sys.stderr)
    stop.set()
    sampler.join()
    tel = session.telemetry
    write_failed = tel.snapshot().to_dict().get("write_failed", 0) if tel is not None else 0
    left = session.stop(30.0)
    subscriber.wait_for(lambda rs: False, 3.0)  # the last PUBLISHes in flight to the observer
    received = {e["id"] for e in subscriber.events()}
    lost = sorted(soak.stored - received)
    subscriber.stop()
    broker.stop()
    camera.stop()
    rec = [f.recovery_s for f in soak.faults if f.recovery_s is not None]
    never = [f.kind for f in soak.faults if f.recovery_s is None]
    q = statistics.quantiles(rec, n=100) if len(rec) >= 2 else rec * 100
    return {"minutes": minutes, "seed": seed, "faults": len(soak.faults),
            "by_kind": {k: sum(f.kind == k for f in soak.faults) for k in kinds},
            "availability": round(availability(soak.samples), 4),
            "recovery_p50_s": round(statistics.median(rec), 3) if rec else None,
            "recovery_p99_s": round(q[98], 3) if rec else None, "never_recovered": never,
            "events_committed": len(soak.stored), "events_lost": len(lost), "left_in_outbox": left,
            "not_stored_disk_full": write_failed, "disk_faults_real": tmpfs,
            "wrong_accepts": [f.kind for f in soak.faults if f.note.endswith("(wrong)")]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    print(json.dumps(run(args.minutes, args.seed), indent=2))


if __name__ == "__main__":
    main()
