"""``python -m edgeinfer.greengrass``: the process the recipe's Run lifecycle starts.

Exit codes: 0 stopped (SIGTERM) or the source ended; 1 failed to start or the pipeline failed
(UpdateState ERRORED was sent first); 2 lost the IPC connection to the nucleus.
Logs go to stderr, which the nucleus writes to ``logs/<component>.log``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import threading
from collections.abc import Callable

from ..core import redact, remote
from ..core.errors import EdgeInferError
from ..core.heap import frozen_heap
from ..core.signals import StopSignals
from . import INFERENCE_COMPONENT

log = logging.getLogger("edgeinfer.greengrass")


def _bounded(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type: a finite number in [lo, hi] (a remote recipe edit must not hang or spin the process)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {lo:g} .. {hi:g}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m edgeinfer.greengrass", description=__doc__.splitlines()[0])
    p.add_argument("--component", default=INFERENCE_COMPONENT,
                   help="this component's name: its command channel and local results topic when it is not the "
                   "default (greengrass/topics.py)")
    p.add_argument("--model", default=None, help="model package used when the configuration sets no model.path")
    p.add_argument("--model-dir", default=None, help="the model component's folder of unpacked versions (what the "
                   "recipe passes): the newest <version>/<model-stem> in it is the model when --model is not given")
    p.add_argument("--model-stem", default="model", help="the folder the model ZIP unpacks to (default: model)")
    p.add_argument("--thing", default=os.environ.get("AWS_IOT_THING_NAME"),
                   help="AWS IoT thing name (default: $AWS_IOT_THING_NAME, set by the nucleus)")
    p.add_argument("--metrics-interval", type=_bounded(1.0, 86_400.0), default=60.0,
                   help="seconds between component metrics (1 .. 86400)")
    p.add_argument("--drain-timeout", type=_bounded(0.0, 600.0), default=None,
                   help="seconds to keep delivering on stop (0 .. 600; default: telemetry.drain_timeout_s)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()  # no secret (URL password, SAS signature, token) in any log line
    if not args.thing:
        log.error("no thing name -> run under the Greengrass nucleus or pass --thing")
        return 1
    stop = threading.Event()
    lost: list[str | None] = []

    def on_disconnect(reason: str | None) -> None:
        if not stop.is_set():
            lost.append(reason)
            log.error("lost the IPC connection to the nucleus: %s", reason or "closed")
            stop.set()

    try:  # the local operator's settings: a file that exists but is bad stops the start (never looser rules)
        local = remote.load_local()
    except EdgeInferError as exc:
        log.error("%s", exc)
        return 1
    if args.model is None and args.model_dir is not None:
        from .model_dir import model_path

        try:
            args.model = model_path(args.model_dir, args.model_stem)
        except EdgeInferError as exc:
            log.error("%s", exc)
            return 1
    StopSignals(stop).__enter__()  # for the life of the process: a second signal exits at once
    from .app import ComponentApp
    from .ipc import connect_v2

    try:
        ipc = connect_v2(on_disconnect)
    except EdgeInferError as exc:
        log.error("%s", exc)
        return 2
    app = ComponentApp(ipc, args.thing, args.model, metrics_interval_s=args.metrics_interval, local=local,
                       component=args.component)
    try:
        app.start()
    except EdgeInferError as exc:
        log.error("%s: %s", args.component, exc)
        ipc.close()
        return 1
    with frozen_heap():  # the start-up heap stays out of full collections while the component runs
        code = app.wait(stop)
    stop.set()
    left = app.close(args.drain_timeout)
    log.info("%s stopped; %d telemetry event(s) kept in the outbox for the next start", args.component, left)
    ipc.close()
    return 2 if lost else code


if __name__ == "__main__":
    sys.exit(main())
