"""read -> preprocess -> infer -> decode/sinks, overlapped in threads with bounded queues.

* Back-pressure: every queue is bounded, so a file source is paced by the slowest stage and drops
  nothing; a live source keeps only its newest frame (see sources.LiveSource) and counts the rest.
* Batching: when the model takes batches, the infer stage takes what is queued, up to ``max_batch``,
  waiting at most ``max_wait_ms`` for a partial batch to fill.
* Per-stage timings are always measured; sinks see frames in order.
* A bad frame is skipped and counted; an error in a stage stops the run and is raised from ``run()``.
* Ending: ``stop()`` ends reading and lets the frames already read drain through; ``abort()`` (and any
  stage error) makes every stage give up at once. No stage blocks on a queue without looking at the
  abort flag, so a stage error with a slow sink cannot hang ``run()``.
* The source is iterated with ``source.iterate(cancel)``: the pipeline never closes a source it does
  not own (``owns_source=False``), so a run session can hand the same open camera to the next pipeline.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import PipelineConfig
from .errors import FrameError
from .geometry import Transform
from .model import LoadedModel
from .sinks.base import Sink
from .sources import Source
from .stats import STAGES, StageStats
from .streams.tally import StreamTally, crop, fit_output
from .types import Frame, FrameResult

log = logging.getLogger(__name__)

_END = object()


@dataclass(slots=True)
class _Item:
    seq: int
    frame: Frame
    tensor: np.ndarray | None = None
    transform: Transform | None = None
    outputs: dict[str, np.ndarray] | None = None
    timings: dict[str, float] | None = None
    model: LoadedModel | None = None  # the model in force when the frame was read (swaps happen between frames)


class Pipeline:
    def __init__(self, model: LoadedModel, source: Source, sinks: list[Sink], config: PipelineConfig | None = None,
                 max_frames: int | None = None, keep_images: bool = True,
                 on_model_change: Callable[[LoadedModel], None] | None = None, owns_source: bool = True) -> None:
        self.model, self.source, self.sinks = model, source, sinks
        self.cfg = config or PipelineConfig()
        self.max_frames = max_frames
        self.keep_images = keep_images
        self.on_model_change = on_model_change  # called on the sink thread before the new model's first result
        self.owns_source = owns_source
        self.stats = StageStats()
        self.frames = 0
        self.bad_frames = 0
        self.batches = 0
        self.detections_by_label: dict[str, int] = {}
        self.first_result_at: float | None = None
        self.started_at = 0.0
        self.ended_at = 0.0
        qs = self.cfg.queue_size
        self._q_pre: queue.Queue[Any] = queue.Queue(qs)
        self._q_inf: queue.Queue[Any] = queue.Queue(qs)
        self._q_post: queue.Queue[Any] = queue.Queue(qs)
        self._stop = threading.Event()  # no more reading; what was read drains through
        self._abort = threading.Event()  # every stage gives up now (an error, or a drain that took too long)
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._retired: list[LoadedModel] = []
        self._posted_model: LoadedModel | None = None
        self.in_flight = 0  # batches inside the runtime right now
        self.latest: FrameResult | None = None
        self.latest_image: np.ndarray | None = None
        self.streams = StreamTally()  # per stream, when the source has several (``sources:``)

    # -- control -----------------------------------------------------------------------------------
    def swap_model(self, new: LoadedModel, keep_old: bool = False) -> LoadedModel:
        """Frames read from now on use ``new``; the old model is closed after its last frame is through, unless
        ``keep_old`` (the caller keeps it open: the rollback target of a model on probation)."""
        with self._lock:
            old, self.model = self.model, new
            if not keep_old:
                self._retired.append(old)
        return old

    def _close_retired(self, keep: LoadedModel) -> None:
        with self._lock:
            done = [m for m in self._retired if m is not keep]
            self._retired = [m for m in self._retired if m is keep]
        for m in done:
            m.close()

    def stop(self) -> None:
        """Ask the run to end after the frames already read (safe from a signal handler)."""
        self._stop.set()

    def abort(self) -> None:
        """End the run now: frames in the queues are dropped (safe from any thread)."""
        self._stop.set()
        self._abort.set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def queue_depths(self) -> dict[str, int]:
        return {"preprocess": self._q_pre.qsize(), "infer": self._q_inf.qsize(), "post": self._q_post.qsize()}

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc
        self.abort()

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        """Blocking put that gives up when the run is aborted (so no thread hangs on a dead consumer)."""
        while not self._abort.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue[Any]) -> Any:
        """Blocking get that returns the end marker once the run is aborted."""
        while not self._abort.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    # -- stages ------------------------------------------------------------------------------------
    def _reader(self) -> None:
        seq = 0
        try:
            it = self.source.iterate(self._stop)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                self.stats.add("read", (time.perf_counter() - t0) * 1e3)
                if not self._put(self._q_pre, _Item(seq, frame, model=self.model)):
                    return
                seq += 1
                if self.max_frames is not None and seq >= self.max_frames:
                    break
        except BaseException as exc:
            self._fail(exc)
        finally:
            for _ in range(self.cfg.preprocess_threads):
                self._put(self._q_pre, _END)

    def _pre_one(self, item: _Item) -> None:
        t0 = time.perf_counter()
        image = crop(item.frame.image, item.frame.roi)  # a stream's region of interest: a view, no copy
        try:
            item.tensor, item.transform = item.model.preprocessor(image)  # type: ignore[union-attr]
        except (FrameError, ValueError) as exc:  # wrong-sized or corrupt: skip and count
            with self._lock:
                self.bad_frames += 1
            self.streams.bad_frame(item.frame.stream)
            log.warning("skipped frame %s#%d: %s", item.frame.source, item.frame.index, exc)
            item.tensor = None
        item.timings = {"preprocess": (time.perf_counter() - t0) * 1e3}
        if item.tensor is not None:
            self.stats.add("preprocess", item.timings["preprocess"])

    def _infer_batch(self, batch: list[_Item]) -> None:
        good = [b for b in batch if b.tensor is not None]
        if not good:
            return
        model = good[0].model
        if any(b.model is not model for b in good):  # a swap landed inside this batch: run each side alone
            split = next(i for i, b in enumerate(good) if b.model is not model)
            self._infer_batch(good[:split])
            self._infer_batch(good[split:])
            return
        t0 = time.perf_counter()
        tensors = [b.tensor for b in good if b.tensor is not None]  # all of them: ``good`` has tensors
        stacked = tensors[0][None] if len(tensors) == 1 else np.stack(tensors)
        self.in_flight += 1
        try:
            outs = model.infer(stacked)  # type: ignore[union-attr]
        finally:
            self.in_flight -= 1
        ms = (time.perf_counter() - t0) * 1e3
        self.batches += 1
        self.stats.add("infer", ms / len(good))
        if len(good) > 1:
            self.stats.add("infer_batch", ms)
        for b, o in zip(good, outs, strict=True):
            b.outputs = o
            b.timings["infer"] = ms  # type: ignore[index]

    def _preprocessor(self) -> None:
        try:
            while True:
                item = self._get(self._q_pre)
                if item is _END:
                    break
                self._pre_one(item)
                if not self._put(self._q_inf, item):
                    return
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._put(self._q_inf, _END)

    def _take_batch(self, first: _Item, ends_seen: list[int]) -> list[_Item]:
        batch = [first]
        deadline = time.perf_counter() + self.cfg.max_wait_ms / 1e3
        while len(batch) < self.model.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                nxt = self._q_inf.get(timeout=min(remaining, 0.1)) if remaining > 0 else self._q_inf.get_nowait()
            except queue.Empty:
                break
            if nxt is _END:
                ends_seen[0] += 1
                if ends_seen[0] == self.cfg.preprocess_threads:
                    break
                continue
            batch.append(nxt)
        return batch

    def _inferrer(self) -> None:
        ends = [0]
        try:
            while ends[0] < self.cfg.preprocess_threads:
                item = self._get(self._q_inf)
                if self._abort.is_set():
                    break
                if item is _END:
                    ends[0] += 1
                    continue
                if item.tensor is None:  # a skipped frame: pass on so the sink stage keeps order
                    if not self._put(self._q_post, item):
                        return
                    continue
                batch = self._take_batch(item, ends) if self.model.max_batch > 1 else [item]
                self._infer_batch(batch)
                for b in batch:
                    if not self._put(self._q_post, b):
                        return
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._put(self._q_post, _END)

    def _post_one(self, it: _Item) -> None:
        if it.outputs is None:
            return
        model = it.model
        assert model is not None
        if model is not self._posted_model:
            first = self._posted_model is None
            self._posted_model = model
            if self._retired:
                self._close_retired(keep=model)
            if not first and self.on_model_change is not None:
                self.on_model_change(model)
        t0 = time.perf_counter()
        assert it.transform is not None  # preprocess set it for every frame that reached inference
        f = it.frame
        output = model.decoder.decode(it.outputs, it.transform, model.labels)
        if f.roi is not None or f.min_score is not None:
            output = fit_output(output, f.roi, f.min_score)
        t1 = time.perf_counter()
        it.timings["decode"] = (t1 - t0) * 1e3  # type: ignore[index]
        result = FrameResult(f.source, f.index, f.ts, f.image.shape[1], f.image.shape[0], model.manifest.task,
                             output, it.timings, f.image if self.keep_images else None,  # type: ignore[arg-type]
                             stream=f.stream, roi=f.roi)
        for sink in self.sinks:
            sink.on_result(result)
        t2 = time.perf_counter()
        it.timings["sinks"] = (t2 - t1) * 1e3  # type: ignore[index]
        it.timings["total"] = (t2 - f.t_read) * 1e3  # type: ignore[index]
        self.stats.add("decode", it.timings["decode"])  # type: ignore[index]
        self.stats.add("sinks", it.timings["sinks"])  # type: ignore[index]
        self.stats.add("total", it.timings["total"])  # type: ignore[index]
        self.frames += 1
        self.latest, self.latest_image = result, f.image  # for snapshots (references, no copy)
        if f.stream is not None:
            self.streams.add(result, f.image)
        if self.first_result_at is None:
            self.first_result_at = t2
        for d in output.detections:
            self.detections_by_label[d.label] = self.detections_by_label.get(d.label, 0) + 1

    def _post(self) -> None:
        """Decode and hand to sinks, in frame order (preprocess workers may finish out of order)."""
        pending: dict[int, _Item] = {}
        next_seq = 0
        while True:
            item = self._get(self._q_post)  # timed: gives up when a stage failed or the run was aborted
            if item is _END or self._abort.is_set():
                break
            pending[item.seq] = item
            while next_seq in pending:
                self._post_one(pending.pop(next_seq))
                next_seq += 1

    def _run_sequential(self) -> None:
        """One frame at a time, all stages on this thread: single-core devices, and overhead benchmarks."""
        it = self.source.iterate(self._stop)
        seq = 0
        while not self._stop.is_set() and (self.max_frames is None or seq < self.max_frames):
            t0 = time.perf_counter()
            frame = next(it, None)
            if frame is None:
                break
            self.stats.add("read", (time.perf_counter() - t0) * 1e3)
            item = _Item(seq, frame, model=self.model)
            seq += 1
            self._pre_one(item)
            self._infer_batch([item])
            self._post_one(item)

    # -- run ---------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run to the end of the source (or ``max_frames``, or ``stop()``); return the summary."""
        self.started_at = time.perf_counter()
        if self.cfg.mode == "sequential":
            try:
                self._run_sequential()
            finally:
                self.ended_at = time.perf_counter()
                if self.owns_source:
                    self.source.close()
            return self.summary()
        threads = [threading.Thread(target=self._reader, name="edgeinfer-read", daemon=True)]
        threads += [threading.Thread(target=self._preprocessor, name=f"edgeinfer-pre{i}", daemon=True)
                    for i in range(self.cfg.preprocess_threads)]
        threads.append(threading.Thread(target=self._inferrer, name="edgeinfer-infer", daemon=True))
        for t in threads:
            t.start()
        try:
            self._post()
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self.ended_at = time.perf_counter()
            self.abort()  # the sink stage is done: any stage still waiting gives up
            for t in threads:
                t.join(timeout=10)
            if self.owns_source:
                self.source.close()
        if self._error is not None:
            raise self._error
        return self.summary()

    def summary(self) -> dict[str, Any]:
        wall = max(1e-9, (self.ended_at or time.perf_counter()) - self.started_at)
        stages = self.stats.percentiles()
        bottleneck = max((s for s in STAGES if s in stages),
                         key=lambda s: stages[s]["p50"], default=None)
        bound = 1e3 / stages[bottleneck]["p50"] if bottleneck and stages[bottleneck]["p50"] > 0 else None
        fps = self.frames / wall
        m = self.model
        return {
            "frames": self.frames,
            "dropped": self.source.dropped,
            "bad_frames": self.bad_frames + self.source.bad,
            "wall_s": round(wall, 3),
            "fps": round(fps, 2),
            "bound_fps": round(bound, 2) if bound else None,
            "bottleneck": bottleneck,
            "efficiency": round(fps / bound, 3) if bound else None,
            "first_result_ms": round((self.first_result_at - self.started_at) * 1e3, 1)
            if self.first_result_at else None,
            "batches": self.batches,
            "mean_batch": round(self.frames / self.batches, 2) if self.batches else 0,
            "stages_ms": stages,
            "detections": dict(sorted(self.detections_by_label.items())),
            "model": {"name": m.manifest.name, "version": m.manifest.version, "sha256": m.package.model_sha256,
                      "task": m.manifest.task, "format": m.manifest.format},
            "backend": m.backend.info.to_dict(),
            "source": self.source.uri,
            **self._streams_summary(wall),
        }

    def _streams_summary(self, wall: float) -> dict[str, Any]:
        states = getattr(self.source, "states", None)
        return {"streams": self.streams.summary(states(), wall)} if states is not None else {}
