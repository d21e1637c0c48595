"""`edgeinfer run` and `edgeinfer bench`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..core.errors import EdgeInferError, SourceError
from ..core.heap import frozen_heap
from ..core.proctime import process_started_at
from ..core.session import RunSession
from ..core.signals import StopSignals
from ..core.sinks.base import RunContext
from ..core.stats import STAGES
from ..core.streams.config import parse_cli_sources
from ..core.types import FrameResult
from .common import build_config, console, console_err, setup_logging, status

DEMO_OUT = "edgeinfer-out"


class ConsoleSink:
    """Prints each detection (or top class) as it happens."""

    def __init__(self) -> None:
        self.task = "detection"

    def start(self, ctx: RunContext) -> None:
        self.task = ctx.task

    def on_result(self, result: FrameResult) -> None:
        stream = f"{result.stream}:" if result.stream is not None else ""
        where = escape(f"{stream}{Path(result.source).name}#{result.index}")
        for d in result.output.detections:
            box = ", ".join(f"{v:.0f}" for v in d.box)
            console.print(f"{where:<28} [bold]{escape(d.label)}[/] {d.score:.2f}  [{box}]")
        if result.output.classes:
            c = result.output.classes[0]
            console.print(f"{where:<28} [bold]{escape(c.label)}[/] {c.score:.2f}")

    def close(self, summary: dict[str, Any]) -> None:
        pass


def _print_alert(event: Any) -> None:
    if getattr(event, "type", None) == "alert":
        ev = event.evidence
        where = escape((f"{ev.stream}:" if ev.stream is not None else "") + Path(ev.source).name)
        console.print(f"[bold red]ALERT[/] {escape(event.rule)} ({event.severity}) at {where}#{ev.frame}: "
                      f"{ev.count} match(es), max score {ev.max_score:.2f}")


def _say_streams(session: RunSession, said: set[str]) -> set[str]:
    """Print what changed in the streams' troubles (one waiting or failing while the others run)."""
    now = {d for d in session.degraded() if d.startswith("stream ")}
    for line in sorted(now - said):
        console_err.print(f"[yellow]{escape(line)}[/]")
    return now


def _serving(cfg: Any, sinks: list[Any]) -> Any | None:
    """The HTTP endpoints when ``serve.enabled`` (imported only then: a plain run's start-up stays as it was);
    its recorder joins ``sinks``."""
    if not cfg.serve.enabled:
        return None
    from .serving import Served

    served = Served(cfg.serve)
    sinks.append(served.recorder)
    served.start()
    console_err.print(f"status page: {escape(served.url)}/  (metrics: {escape(served.url)}/metrics)", soft_wrap=True)
    return served


def summary_table(summary: dict[str, Any]) -> Table:
    t = Table(title="edgeinfer run", show_header=True, header_style="bold")
    t.add_column("stage")
    for col in ("p50 ms", "p95 ms", "p99 ms"):
        t.add_column(col, justify="right")
    for stage in (*STAGES, "total"):
        s = summary["stages_ms"].get(stage)
        if s:
            t.add_row(stage, f"{s['p50']:.2f}", f"{s['p95']:.2f}", f"{s['p99']:.2f}")
    b = summary["backend"]
    dets = ", ".join(f"{k}: {v}" for k, v in summary["detections"].items()) or "none"
    t.caption = (f"{summary['frames']} frames, {summary['fps']:.1f} fps, dropped {summary['dropped']}, "
                 f"bad {summary['bad_frames']} | detections {dets}\n"
                 f"model {summary['model']['name']} {summary['model']['version']} on {b['backend']}:{b['device']}"
                 + (f" [red]DEGRADED: {b['reason']}[/]" if b["degraded"] else ""))
    return t


def streams_table(streams: dict[str, Any]) -> Table:
    """One row per stream of ``sources:``: how it ended, what it delivered and what the model found in it."""
    t = Table(title="streams", show_header=True, header_style="bold")
    for col, right in (("stream", False), ("state", False), ("frames", True), ("fps", True), ("p50 ms", True),
                       ("dropped", True), ("bad", True), ("detections", False)):
        t.add_column(col, justify="right" if right else "left")
    for sid, st in streams.items():
        lat = st.get("latency_ms") or {}
        dets = ", ".join(f"{k}: {v}" for k, v in st.get("detections", {}).items()) or "none"
        state = st["state"] + (f": {st['reason']}" if st.get("reason") else "")
        t.add_row(escape(sid), escape(state), str(st["frames"]), f"{st['fps']:.1f}",
                  f"{lat['p50']:.2f}" if lat else "-", str(st["dropped"]), str(st["bad"]), escape(dets))
    return t


def run(
    model: Annotated[str | None, typer.Option(
        help="Model package (folder/.zip) or a bare .onnx/.tflite/.engine")] = None,
    source: Annotated[list[str] | None, typer.Option(
        help="Image, folder, video, camera index, rtsp:// URL, gst:PIPELINE, synthetic:WxH[:N]; repeat it for "
        "several streams through one model, each as ID=URI or URI")] = None,
    out: Annotated[str | None, typer.Option(help="Write results.jsonl, annotated/ and summary.json here")] = None,
    config: Annotated[str | None, typer.Option(
        "--config", help="YAML/JSON config file (see docs/configuration.md)")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop after N frames")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, onnxruntime[:cpu|cuda|tensorrt|openvino], "
                                                "litert[:cpu|edgetpu], tensorrt")] = None,
    task: Annotated[str | None, typer.Option(help="Task of a bare model file")] = None,
    threshold: Annotated[float | None, typer.Option(help="Score threshold override")] = None,
    telemetry: Annotated[str | None, typer.Option(
        help="Telemetry: none, stdout, file:PATH, mqtt://host:port, mqtts://host:port?ca=&cert=&key=")] = None,
    telemetry_mode: Annotated[str | None, typer.Option(help="summary, results or alerts-only")] = None,
    state_dir: Annotated[str | None, typer.Option(
        help="Outbox and sequence numbers (default $EDGEINFER_STATE_DIR or ~/.local/state/edgeinfer)")] = None,
    drain_timeout: Annotated[float | None, typer.Option(
        help="On exit, keep delivering telemetry for up to this many seconds (default 30)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print each detection")] = False,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING, ERROR")] = None,
    serve: Annotated[str | None, typer.Option(
        help="Serve /metrics, /healthz, /readyz and a status page on HOST:PORT, e.g. 127.0.0.1:9464 "
        "(docs/observability.md)")] = None,
) -> None:
    t_proc = process_started_at()
    streams = parse_cli_sources(source) if source else {}
    cfg = build_config(config, {
        "model": {"path": model, "task": task, "score_threshold": threshold},
        **streams, "output": {"dir": out}, "max_frames": max_frames,
        "backend": {"name": backend}, "log_level": log_level, "state_dir": state_dir,
        "telemetry": {"transport": telemetry, "mode": telemetry_mode, "drain_timeout_s": drain_timeout},
        "serve": {"enabled": True, "listen": serve} if serve else {},
    }, replace=("sources", "source.uri") if "sources" in streams else ("sources",) if streams else ())
    demo = cfg.model.path is None and cfg.source.uri is None and not cfg.sources
    if demo and cfg.output.dir is None:
        cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"dir": DEMO_OUT})})
    setup_logging(cfg.log_level)
    sinks: list[Any] = [] if (quiet or not cfg.output.print_detections) else [ConsoleSink()]
    # from here on a SIGTERM or Ctrl-C stops the run cleanly, also while the model loads and the source opens
    with StopSignals() as stop:
        served = _serving(cfg, sinks)  # before the session: /healthz and /readyz answer while the model loads
        with status("preparing") as progress:
            session = RunSession(cfg, extra_sinks=sinks, progress=progress)
            if served is not None:
                served.bind(session)
            try:
                session.start()
            except BaseException:
                if served is not None:
                    served.stop()
                raise
        parts = session.context()
        if session.telemetry is not None:
            session.telemetry.add_listener(_print_alert)
        if demo:
            console.print(f"[bold]demo[/]: {escape(parts.model_name)} {escape(parts.model_version)} over "
                          f"{escape(session.source_uri)}")
        said: str | None = None
        streams_said: set[str] = set()
        with frozen_heap():  # the start-up heap stays out of full collections while frames flow
            while not session.wait(0.2) and not stop.is_set():
                state, reason = session.state()
                if state in ("waiting", "restarting") and reason != said:
                    console_err.print(f"[yellow]{escape(reason or '')}[/]")
                said = reason
                streams_said = _say_streams(session, streams_said)
            if stop.is_set() and session.telemetry is not None and cfg.telemetry.transport != "none":
                console_err.print(f"stopping: delivering telemetry for up to {cfg.telemetry.drain_timeout_s:g} s "
                                  "(a second Ctrl-C or SIGTERM exits at once; undelivered events stay in the outbox)")
            state, reason = session.state()  # how the run ended, before stop() makes it "stopped"
            extra: dict[str, Any] = {}
            if session.first_result_at is not None:
                first_wall = time.time() - (time.perf_counter() - session.first_result_at)
                extra["cold_start_ms"] = round((first_wall - t_proc) * 1e3, 1)
            if served is not None:
                served.keep_last_frame()  # the page shows the last frame after the run
            session.stop(extra_summary=extra)  # writes summary.json
            if served is not None:
                served.linger(stop)
    summary = session.last_summary or {}
    if summary.get("stages_ms") is not None:
        console.print(summary_table(summary))
    if summary.get("streams"):
        console.print(streams_table(summary["streams"]))
    tel = summary.get("telemetry")
    if tel and tel["transport"] != "none":
        left = tel["left_in_outbox"]
        console.print(f"telemetry ({escape(tel['transport'])}, {tel['mode']}): "
                      + (f"[yellow]{left} events left in the outbox for the next start[/]" if left
                         else "everything delivered"))
    if cfg.output.dir:
        out_dir = Path(cfg.output.dir)
        annotated = f"annotated frames: {out_dir / 'annotated'}, " if cfg.output.annotate else ""
        console.print(escape(f"results: {out_dir / 'results.jsonl'}, {annotated}summary: {out_dir / 'summary.json'}"),
                      soft_wrap=True)
    if state == "error":
        raise EdgeInferError(f"the run failed: {reason}", "see the log above for the cause")
    if not summary.get("frames") and not stop.is_set():
        bad = summary.get("bad_frames", 0)
        raise SourceError(f"no frame was inferred ({bad} bad frame(s) skipped) from {session.source_uri}",
                          "check the source: the files must be readable images or videos")


def whole_frame_table(rep: dict[str, Any]) -> Table:
    """Whole-frame latency and throughput of the hand-written loop and edgeinfer, with the targets met or not."""
    t = Table(title="whole frame: take the frame -> decoded result", header_style="bold")
    t.add_column("loop")
    for col in ("p50 ms", "p99 ms", "p99/p50", "fps"):
        t.add_column(col, justify="right")
    names = {"hand_written": "hand-written", "sequential": "edgeinfer sequential", "pipelined": "edgeinfer pipelined"}
    for key, name in names.items():
        row = rep["whole_frame"][key]
        if row is not None:
            t.add_row(name, f"{row['p50_ms']:.3f}", f"{row['p99_ms']:.3f}", f"{row['jitter']:.2f}", f"{row['fps']:.1f}")
    if rep.get("targets"):
        t.caption = "\n".join([f"sequential / hand-written p50 {rep['sequential_vs_hand']:.3f}; pipelined / "
                               f"hand-written fps {rep['pipelined_vs_hand']:.3f} (the bound allows "
                               f"{rep['bound_vs_hand']:.3f})"]
                              + [f"{'met' if ok else 'MISSED'}: {escape(name)}" for name, ok in rep["targets"].items()])
    else:
        t.caption = escape(rep["hand_written_missing"] or "")
    return t


def bench(
    model: Annotated[str | None, typer.Option(help="Model package or file (default: the demo model)")] = None,
    frames: Annotated[int, typer.Option(help="Frames per measurement")] = 500,
    backend: Annotated[str | None, typer.Option(help="Backend, as for run")] = None,
    task: Annotated[str | None, typer.Option(help="Task of a bare model file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    plot: Annotated[str | None, typer.Option(help="Write a latency plot (PNG) here")] = None,
) -> None:
    from ..core.benchmark import run_benchmark

    setup_logging("WARNING")
    cfg = build_config(None, {"model": {"path": model, "task": task}, "backend": {"name": backend}})
    with status("benchmarking") as progress:
        result = run_benchmark(cfg, frames, progress=progress)
    if plot:
        from ..core.plots import latency_plot

        latency_plot(result, Path(plot))
    if as_json:
        typer.echo(json.dumps(result.report()))
        return
    rep = result.report()
    t = Table(title=f"edgeinfer bench: {rep['model']} on {rep['backend']}", header_style="bold")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for key in ("frames", "bare_p50_ms", "edgeinfer_p50_ms", "overhead_ratio", "pipeline_p50_ms",
                "throughput_fps", "bound_fps", "bottleneck", "efficiency"):
        t.add_row(key, str(rep[key]))
    console.print(t)
    console.print(whole_frame_table(rep))
    if plot:
        console.print(f"latency plot: {escape(str(plot))}", soft_wrap=True)
