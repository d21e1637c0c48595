"""Run Greengrass Lite's daemons without systemd, inside a private mount namespace (its core-bus sockets
live in the fixed folder /run/greengrass: a tmpfs of its own there keeps test runs apart).

    python daemons.py --bin DIR --config config.yaml --state DIR

Starts ggconfigd (loading config.yaml and the fragments in config.d/, its database in --state), then
ggpubsubd, ggipcd and iotcored, each
once the one before listens; prints "ready" and waits; SIGTERM stops them in reverse order. Stdlib only: it
runs by path under unshare and netns_launch.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

RUN = Path("/run/greengrass")
#: daemon -> the core-bus socket it serves (it is up once that exists)
DAEMONS = (("ggconfigd", "gg_config"), ("ggpubsubd", "gg_pubsub"), ("ggipcd", "ipc_component"),
           ("iotcored", "aws_iot_mqtt"))


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode} before {path} appeared")
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear within {timeout_s}s")
        time.sleep(0.02)  # polling a file that a foreign process creates: no event to wait on


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--state", required=True)
    args = ap.parse_args(argv)
    RUN.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(RUN)], check=True)
    state = Path(args.state)
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for name, sock in DAEMONS:
            cmd = [os.path.join(args.bin, name)] + (["-c", args.config, "-C", str(Path(args.config).with_suffix(".d"))]
                                                    if name == "ggconfigd" else [])
            log = (state / f"{name}.log").open("ab")
            procs.append(subprocess.Popen(cmd, cwd=state, stdout=log, stderr=subprocess.STDOUT))
            wait_for(RUN / sock, procs[-1], 20)
        print("ready", flush=True)
        while not stop.wait(0.5):
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                print(f"{dead[0].args[0]} exited with {dead[0].returncode}", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
