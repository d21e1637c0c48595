"""Several streams through one model session (``sources:``): fair, per-stream, failure-isolated, updated in place.

The colour classifier (a real onnxruntime session with a batch axis) answers each frame with its colour, so every
result proves which stream's frame it was: a frame attributed to the wrong stream, or mixed up in a batch, shows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgeinfer.core.config import EdgeInferConfig, PipelineConfig, validate
from edgeinfer.core.errors import ConfigError, SourceError
from edgeinfer.core.model import load_model
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.pipeline import Pipeline
from edgeinfer.core.remote import remote_problems
from edgeinfer.core.session import RunSession
from edgeinfer.core.sources import MemorySource, Source
from edgeinfer.core.streams.config import StreamConfig, parse_cli_sources
from edgeinfer.core.streams.mux import MultiSource
from edgeinfer.core.streams.opening import open_stream, stream_thresholds
from edgeinfer.core.types import Frame

from .by_stream import ByStream
from .colour_model import COLOURS_BGR, LABELS, frame, make_colour_model


@pytest.fixture(scope="module")
def colour_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_model(tmp_path_factory.mktemp("colour"))


def folder_of(tmp: Path, name: str, colour: str, n: int) -> Path:
    d = tmp / name
    d.mkdir()
    for i in range(n):
        cv2.imwrite(str(d / f"{i:04d}.png"), frame(colour))
    return d


class FailsAfter(Source):
    """A stream that delivers ``n`` frames and then breaks (a camera's decoder failing, a share going away)."""

    def __init__(self, colour: str, n: int, live: bool = False) -> None:
        super().__init__(f"failing-{colour}")
        self.colour, self.n, self.live = colour, n, live

    def frames(self) -> Iterator[Frame]:
        for i in range(self.n):
            f = self._frame(self.uri, i, frame(self.colour))
            assert f is not None
            yield f
        raise SourceError(f"{self.uri} broke after {self.n} frames", "check the camera")


# -- configuration --------------------------------------------------------------------------------
def test_cli_sources_parse_into_the_shorthand_or_a_list() -> None:
    assert parse_cli_sources(["rtsp://cam/a?x=1"]) == {"source": {"uri": "rtsp://cam/a?x=1"}}
    assert parse_cli_sources(["door=rtsp://cam/a", "/data/b=c.mp4", "2"]) == {"sources": [
        {"id": "door", "uri": "rtsp://cam/a"}, {"id": "stream2", "uri": "/data/b=c.mp4"},
        {"id": "stream3", "uri": "2"}]}
    assert parse_cli_sources(["yard=synthetic:64x64"]) == {"sources": [{"id": "yard", "uri": "synthetic:64x64"}]}
    with pytest.raises(ConfigError, match="names no URI"):
        parse_cli_sources(["a=", "b=x"])


@pytest.mark.parametrize(("doc", "message"), [
    ({"sources": [{"id": "a", "uri": "x"}, {"id": "a", "uri": "y"}]}, "'a' is used twice"),
    ({"source": {"uri": "x"}, "sources": [{"id": "a", "uri": "x"}]}, "not both"),
    ({"sources": [{"id": "a b", "uri": "x"}]}, "sources.0.id"),
    ({"sources": [{"id": "a", "uri": "x", "roi": {"x": 0.6, "w": 0.5}}]}, "inside the frame"),
    ({"sources": [{"id": "a", "uri": "x", "rules": [{"name": "r", "actions": [{"type": "command", "hook": "h"}]}]}]},
     r"sources\[0\].rules\[0\].actions\[0\].hook: no hook named 'h'"),
])
def test_bad_stream_lists_are_refused_with_the_key(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(doc)


def test_a_remote_stream_uri_is_checked_like_source_uri() -> None:
    base = EdgeInferConfig(remote={"source_hosts": ["cams.example"]})
    ok = {"sources": [{"id": "a", "uri": "rtsp://cams.example/1"}]}
    bad = {"sources": [{"id": "a", "uri": "rtsp://cams.example/1"}, {"id": "b", "uri": "rtsp://10.0.0.9/x"}]}
    assert remote_problems(ok, base) == []
    assert [p.split(":")[0] for p in remote_problems(bad, base)] == ["sources.1.uri"]


def test_the_model_runs_at_the_lowest_threshold_and_each_stream_filters_its_own() -> None:
    streams = [StreamConfig(id="a", uri="x"), StreamConfig(id="b", uri="x", score_threshold=0.3),
               StreamConfig(id="c", uri="x", score_threshold=0.8)]
    assert stream_thresholds(0.5, None, streams) == (0.3, {"a": 0.5, "b": None, "c": 0.8})
    assert stream_thresholds(0.5, 0.6, streams[:1]) == (0.6, {"a": None})
    assert stream_thresholds(0.5, None, streams[:1]) == (None, {"a": None})  # the package's decoder as it is
    assert stream_thresholds(None, 0.4, streams) == (None, {})  # a task without a threshold


# -- the multiplexer on a real pipeline ------------------------------------------------------------
def mux_of(streams: dict[str, Source]) -> MultiSource:
    return MultiSource([(StreamConfig(id=sid, uri=src.uri), src) for sid, src in streams.items()], opener=open_stream)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_every_frame_of_every_stream_is_inferred_as_its_own(colour_pkg: Path, n: int) -> None:
    counts = {f"s{i}": 10 + 7 * i for i in range(n)}
    colour = {f"s{i}": LABELS[i % 3] for i in range(n)}
    mux = mux_of({sid: MemorySource([frame(colour[sid])], name=sid, repeat=c) for sid, c in counts.items()})
    sink = ByStream()
    model = load_model(load_package(colour_pkg), max_batch=8)
    summary = Pipeline(model, mux, [sink], PipelineConfig(max_batch=8, max_wait_ms=20, queue_size=16)).run()
    for sid, c in counts.items():
        got = sink.results[sid]
        assert [r.index for r in got] == list(range(c)), sid  # all of it, in its own order
        assert {r.output.classes[0].label for r in got} == {colour[sid]}, sid  # never another stream's answer
        assert summary["streams"][sid]["frames"] == c and summary["streams"][sid]["state"] == "finished"
    assert summary["frames"] == sum(counts.values()) and summary["dropped"] == 0
    assert summary["mean_batch"] > 1.0  # frames of different streams shared batches


def test_round_robin_lets_no_stream_starve(colour_pkg: Path) -> None:
    mux = mux_of({"big": MemorySource([frame("red")], name="big", repeat=300),
                  "small": MemorySource([frame("blue")], name="small", repeat=20)})
    sink = ByStream()
    order: list[str | None] = []
    sink_order = type("Order", (), {"start": lambda self, ctx: None, "close": lambda self, s: None,
                                    "on_result": lambda self, r: order.append(r.stream)})()
    model = load_model(load_package(colour_pkg), max_batch=1)
    Pipeline(model, mux, [sink, sink_order], PipelineConfig(mode="pipelined")).run()
    first = Counter(order[:40])
    assert first["small"] >= 18 and first["big"] >= 18  # taken in turn, not 300 "big" first


def test_a_paced_stream_never_paces_the_others(colour_pkg: Path) -> None:
    """A file paced to 5 fps stands in for a camera: the unpaced stream beside it is not held back waiting for
    it (it would be, 20 ms a frame, if every stream that is behind were waited for)."""
    from edgeinfer.core.sources import SyntheticSource

    mux = mux_of({"fast": MemorySource([frame("red")], name="fast", repeat=200),
                  "paced": SyntheticSource(64, 48, count=3, fps=5)})
    order: list[str | None] = []
    sink = type("Order", (), {"start": lambda self, ctx: None, "close": lambda self, s: None,
                              "on_result": lambda self, r: order.append(r.stream)})()
    Pipeline(load_model(load_package(colour_pkg)), mux, [sink], PipelineConfig()).run()
    assert order.count("fast") == 200 and order.count("paced") == 3
    assert max(i for i, sid in enumerate(order) if sid == "fast") < max(
        i for i, sid in enumerate(order) if sid == "paced")  # 200 frames inside the paced stream's 0.4 s


def test_a_broken_stream_ends_alone_and_the_others_are_whole(colour_pkg: Path) -> None:
    mux = mux_of({"ok": MemorySource([frame("green")], name="ok", repeat=60), "bad": FailsAfter("red", 5)})
    sink = ByStream()
    summary = Pipeline(load_model(load_package(colour_pkg)), mux, [sink], PipelineConfig()).run()
    assert sink.count("ok") == 60 and sink.count("bad") == 5
    bad = summary["streams"]["bad"]
    assert bad["state"] == "error" and "broke after 5 frames" in bad["reason"]
    assert summary["streams"]["ok"]["state"] == "finished"


def test_a_failing_camera_is_reopened_on_its_own(colour_pkg: Path) -> None:
    """A live stream that breaks is reopened with backoff (the opener gives a working source the second time);
    the retry is counted and the other stream's frames are whole."""
    opened: list[str] = []

    def reopen(cfg: StreamConfig) -> Source:
        opened.append(cfg.id)
        return MemorySource([frame("blue")], name="cam-again", repeat=6)

    cams = [(StreamConfig(id="cam", uri="rtsp://x/cam"), FailsAfter("red", 3, live=True)),
            (StreamConfig(id="file", uri="m"), MemorySource([frame("green")], name="file", repeat=40))]
    mux = MultiSource(cams, opener=reopen, backoff_s=(0.05, 0.1))
    sink = ByStream()
    summary = Pipeline(load_model(load_package(colour_pkg)), mux, [sink], PipelineConfig()).run()
    assert opened == ["cam"] and summary["streams"]["cam"]["retries"] == 1
    labels = [r.output.classes[0].label for r in sink.results["cam"]]
    assert "blue" in labels and set(labels) <= {"red", "blue"}  # frames before and after the reopening
    assert [r.index for r in sink.results["file"]] == list(range(40))


def test_a_live_stream_keeps_its_newest_frame_and_counts_the_rest(colour_pkg: Path) -> None:
    class Burst(MemorySource):
        live = True  # a camera: the multiplexer keeps the newest frame, not a queue

    mux = mux_of({"cam": Burst([frame("red")], name="cam", repeat=50)})
    it = mux.iterate()
    first = next(it)
    assert mux.wait_ended(10)  # the camera delivered everything while nobody took frames
    taken = [first, *it]
    st = mux.states()["cam"]
    assert len(taken) <= 2 and st["read"] == 50 and st["dropped"] == 50 - len(taken)  # every frame accounted for
    assert {f.stream for f in taken} == {"cam"} and taken[-1].index == 49  # the newest one is never lost


def test_a_region_of_interest_is_what_the_model_sees(colour_pkg: Path) -> None:
    half = np.zeros((32, 64, 3), dtype=np.uint8)
    half[:, :32] = COLOURS_BGR["red"]
    half[:, 32:] = COLOURS_BGR["blue"]
    cfg = {"right": StreamConfig(id="right", uri="m", roi={"x": 0.5, "w": 0.5}),
           "whole": StreamConfig(id="whole", uri="m"), "left": StreamConfig(id="left", uri="m", roi={"w": 0.5})}
    mux = MultiSource([(c, MemorySource([half], name=sid, repeat=3)) for sid, c in cfg.items()], opener=open_stream)
    sink = ByStream()
    Pipeline(load_model(load_package(colour_pkg)), mux, [sink], PipelineConfig()).run()
    assert {r.output.classes[0].label for r in sink.results["right"]} == {"blue"}
    assert {r.output.classes[0].label for r in sink.results["left"]} == {"red"}
    right = sink.results["right"][0]
    assert right.roi == (32, 0, 32, 32) and (right.width, right.height) == (64, 32)  # the whole frame's size
    whole = sink.results["whole"][0]
    assert whole.roi is None and whole.output.classes[0].score < 0.6  # half and half: unsure


# -- the run session: thresholds, rules, snapshots, updates in place --------------------------------
@pytest.fixture
def streams_session(colour_pkg: Path, tmp_path: Path) -> Iterator[tuple[RunSession, ByStream]]:
    cfg = validate({"model": {"path": str(colour_pkg)}, "state_dir": str(tmp_path / "state"),
                    "sources": [{"id": "a", "uri": "synthetic:64x64", "fps": 100},
                                {"id": "b", "uri": "synthetic:64x64", "fps": 100}]})
    sink = ByStream()
    session = RunSession(cfg, extra_sinks=[sink])
    session.start()
    assert sink.wait_for("a", 3) and sink.wait_for("b", 3)
    yield session, sink
    session.stop(0)


def test_streams_are_added_and_removed_while_the_others_run_on(streams_session: tuple[RunSession, ByStream]) -> None:
    session, sink = streams_session
    runner = session._runner
    pipeline = runner.pipeline if runner is not None else None
    before_a = sink.count("a")
    session.apply_patch({"sources": [{"id": "a", "uri": "synthetic:64x64", "fps": 100},
                                     {"id": "c", "uri": "synthetic:96x64", "fps": 100}]})
    assert sink.wait_for("c", 5) and sink.wait_for("a", 5)
    assert session._runner is runner and runner is not None and runner.pipeline is pipeline  # no restart
    a = sink.results["a"]
    assert [r.index for r in a] == list(range(len(a))) and len(a) > before_a  # stream a never started over
    streams = session.status()["streams"]
    assert list(streams) == ["a", "c"] and streams["c"]["state"] == "running"
    after_b = sink.count("b")
    assert sink.wait_for("a", 10)
    assert sink.count("b") == after_b  # b is gone


def test_a_stream_update_that_cannot_open_changes_nothing(streams_session: tuple[RunSession, ByStream],
                                                          tmp_path: Path) -> None:
    session, sink = streams_session
    before = session.config
    with pytest.raises(SourceError, match=r"stream c: source .* does not exist"):
        session.apply_patch({"sources": [*before.model_dump(mode="json")["sources"],
                                         {"id": "c", "uri": str(tmp_path / "missing.mp4")}]})
    assert session.config == before and list(session.status()["streams"]) == ["a", "b"]
    assert sink.wait_for("a", 3) and sink.wait_for("b", 3)


def test_each_stream_snapshot_and_state(streams_session: tuple[RunSession, ByStream]) -> None:
    session, _ = streams_session
    for sid in ("a", "b"):
        jpeg = session.snapshot(sid)
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (64, 64, 3)
    with pytest.raises(ConfigError, match=r"no stream named 'zz' runs \(streams: a, b\)"):
        session.snapshot("zz")
    health = session._run_state()["streams"]
    assert set(health) == {"a", "b"} and health["a"]["state"] == "running" and health["a"]["frames"] > 0


def test_a_stream_threshold_filters_only_that_stream(colour_pkg: Path, tmp_path: Path) -> None:
    half = np.zeros((32, 64, 3), dtype=np.uint8)
    half[:, :32], half[:, 32:] = COLOURS_BGR["red"], COLOURS_BGR["blue"]
    cv2.imwrite(str(tmp_path / "half.png"), half)
    cfg = validate({"model": {"path": str(colour_pkg)}, "state_dir": str(tmp_path / "state"),
                    "sources": [{"id": "strict", "uri": str(tmp_path / "half.png"), "score_threshold": 0.9},
                                {"id": "lax", "uri": str(tmp_path / "half.png")}]})
    sink = ByStream()
    session = RunSession(cfg, extra_sinks=[sink])
    session.start()
    assert session.wait(20)
    session.stop(0)
    assert sink.results["lax"][0].output.classes and not sink.results["strict"][0].output.classes


def test_a_stream_with_its_own_rules_alerts_alone(colour_pkg: Path, tmp_path: Path) -> None:
    red, blue = folder_of(tmp_path, "red", "red", 4), folder_of(tmp_path, "blue", "blue", 4)
    rule = {"name": "seen-blue", "when": {"label": "blue", "min_score": 0.5}, "actions": [{"type": "alert"}]}
    cfg = validate({"model": {"path": str(colour_pkg)}, "state_dir": str(tmp_path / "state"),
                    "telemetry": {"transport": f"file:{tmp_path / 'events.jsonl'}", "mode": "alerts-only"},
                    "sources": [{"id": "yard", "uri": str(blue), "rules": [rule]}, {"id": "gate", "uri": str(red)},
                                {"id": "door", "uri": str(blue)}]})
    session = RunSession(cfg)
    session.start()
    assert session.wait(20)
    session.stop(5)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    fired = [e for e in events if e["type"] == "alert"]
    assert [e["evidence"]["stream"] for e in fired] == ["yard"]  # door sees blue too, but has no such rule


def test_a_shadow_candidate_sees_the_streams_region(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """The candidate is judged on what the active model saw: the region, boxes in whole-frame pixels."""
    from .variants import same_model

    candidate = same_model(demo_pkgs[0], tmp_path / "candidate")
    cfg = validate({"model": {"path": str(demo_pkgs[0])}, "state_dir": str(tmp_path / "state"),
                    "sources": [{"id": "left", "uri": str(demo_media[0]), "roi": {"w": 0.4}}],
                    "shadow": {"model": str(candidate), "max_cost": 1.0}})
    sink = ByStream()
    session = RunSession(cfg, extra_sinks=[sink])
    session.start()
    assert session.wait(60)
    shadow = session.status()["shadow"]
    session.stop(0)
    assert shadow["frames"] > 0 and shadow["agreement"] == 1.0, shadow
    assert all(d.box[0] >= 0 and d.box[2] <= r.roi[2] + 1 for r in sink.results["left"] for d in r.output.detections
               if r.roi is not None)


def test_a_streams_rules_change_in_place(colour_pkg: Path, tmp_path: Path) -> None:
    """A deployment that changes only one stream's rules: the rule engine takes them, nothing is reopened or
    restarted, and the new rule fires on that stream's next frames (and only there)."""
    def rule(name: str, label: str | None) -> dict[str, Any]:
        return {"name": name, "when": {"label": label, "min_score": 0.0}, "actions": [{"type": "alert"}]}

    events = tmp_path / "events.jsonl"
    cfg = validate({"model": {"path": str(colour_pkg)}, "state_dir": str(tmp_path / "state"),
                    "telemetry": {"transport": f"file:{events}", "mode": "alerts-only"},
                    "sources": [{"id": "yard", "uri": "synthetic:64x64", "fps": 50,
                                 "rules": [rule("never", "no-such-label")]},
                                {"id": "gate", "uri": "synthetic:64x64", "fps": 50}]})
    sink = ByStream()
    session = RunSession(cfg, extra_sinks=[sink])
    session.start()
    try:
        assert sink.wait_for("yard", 5)
        runner = session._runner
        pipeline = runner.pipeline if runner is not None else None
        doc = session.config.model_dump(mode="json")["sources"]
        doc[0]["rules"] = [rule("anything", None)]
        session.apply_patch({"sources": doc})
        assert session._runner is runner and runner is not None and runner.pipeline is pipeline
        assert sink.wait_for("yard", 10) and sink.wait_for("gate", 10)
    finally:
        session.stop(5)
    fired = [json.loads(x) for x in events.read_text().splitlines() if json.loads(x)["type"] == "alert"]
    assert fired and {(e["rule"], e["evidence"]["stream"]) for e in fired} == {("anything", "yard")}
