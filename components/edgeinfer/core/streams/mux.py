"""Several streams as one source for one pipeline (one model session): fair, per-stream, failure-isolated.

* Each stream has a feeder thread that pulls its own source into a one-frame slot. A live stream's newer
  frame replaces one not yet taken (counted in that stream's ``dropped``); a file stream waits for its slot
  to be taken (back-pressure, nothing dropped).
* The pipeline's reader takes, of the streams with a frame waiting, the one it has served least (a stream
  added later starts level with the others): each gets its share however fast the others deliver. Frames
  taken close together from different streams are batched together when the model takes batches.
* A stream that fails is retried on its own with backoff (live or looping streams; others end in ``error``)
  and reported on its own; the others never notice. The whole source ends when every stream has ended.
* Streams are added, removed and re-tuned (region, threshold, rules) in place by ``update``: the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ..errors import EdgeInferError
from ..redact import redact
from ..sources import POLL_S, Source
from ..types import Frame
from .config import StreamConfig

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = (1.0, 30.0)
#: how long the reader holds a turn for a file stream that is behind and about to hand over a frame (its reader
#: thread was not scheduled yet): long enough for scheduling jitter. Only a stream that refilled its slot within
#: this long last time is waited for, so a slow decoder or a paced file never paces the other streams.
FAIR_WAIT_S = 0.02
FEEDER_JOIN_S = 2.0
Opener = Callable[[StreamConfig], Source]


@dataclass
class _Stream:
    cfg: StreamConfig
    source: Source
    phase: str = "starting"  # starting | running | retrying | finished | error
    reason: str | None = None
    read: int = 0  # frames taken from the source
    replaced: int = 0  # live frames replaced in the slot before the pipeline took them
    retries: int = 0
    taken: int = 0  # frames the pipeline took: the fair share's account
    taken_at: float | None = None  # monotonic time the pipeline last took its frame
    refill_s: float | None = None  # how long its reader took to hand over the next frame after that
    min_score: float | None = None  # stamped on every frame (the session sets it with the model's threshold)
    slot: Frame | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    feeder: threading.Thread | None = None

    @property
    def ended(self) -> bool:
        return self.phase in ("finished", "error")

    def state(self) -> dict[str, Any]:
        waiting = self.source.waiting if self.phase in ("starting", "running") else None
        state = "waiting" if waiting else ("running" if self.phase == "starting" else self.phase)
        return {"uri": self.source.uri, "state": state, "reason": waiting or self.reason, "read": self.read,
                "dropped": self.source.dropped + self.replaced, "bad": self.source.bad, "retries": self.retries}


class MultiSource(Source):
    """``streams``: (config, opened source) pairs in order; ``opener`` opens a stream's source again (retries)."""

    def __init__(self, streams: list[tuple[StreamConfig, Source]], opener: Opener,
                 backoff_s: tuple[float, float] = RETRY_BACKOFF_S) -> None:
        super().__init__("streams: " + ", ".join(c.id for c, _ in streams))
        self._opener, self._backoff = opener, backoff_s
        self._cond = threading.Condition()
        self._streams: dict[str, _Stream] = {c.id: _Stream(c, s) for c, s in streams}
        self._feeding = False  # feeders run while the pipeline iterates
        self._held_until: float | None = None  # a turn held for a file stream that is behind (FAIR_WAIT_S)
        self.live = any(s.live or c.loop for c, s in streams)

    # -- counters over the streams (the pipeline's summary) ----------------------------------------
    @property
    def dropped(self) -> int:
        return sum(s.source.dropped + s.replaced for s in list(self._streams.values()))

    @dropped.setter
    def dropped(self, value: int) -> None:
        pass  # Source.__init__ sets it; the streams keep their own counts

    @property
    def bad(self) -> int:
        return sum(s.source.bad for s in list(self._streams.values()))

    @bad.setter
    def bad(self, value: int) -> None:
        pass

    @property
    def waiting(self) -> str | None:
        """Set only while no stream can deliver: then the run as a whole waits (each stream's reason in ``states``)."""
        streams = [s for s in self._streams.values() if not s.ended]
        if not streams or any(s.phase in ("starting", "running") and not s.source.waiting for s in streams):
            return None  # one stream delivers (or is about to): the run infers
        reasons = [f"{s.cfg.id}: {s.state()['reason']}" for s in streams]
        more = f" and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        return f"waiting for source: every stream waits ({'; '.join(reasons[:3])}{more})"

    @property
    def ids(self) -> list[str]:
        return list(self._streams)

    def config_of(self, sid: str) -> StreamConfig | None:
        st = self._streams.get(sid)
        return st.cfg if st is not None else None

    def states(self) -> dict[str, dict[str, Any]]:
        """Each stream's state (running / waiting / retrying / finished / error), reason and counters."""
        return {sid: st.state() for sid, st in list(self._streams.items())}

    def wait_ended(self, timeout_s: float) -> bool:
        """Block until every stream has ended (finished or failed for good): True, or False after ``timeout_s``."""
        with self._cond:
            return self._cond.wait_for(lambda: all(st.ended for st in self._streams.values()), timeout_s)

    def set_min_scores(self, scores: dict[str, float | None]) -> None:
        for sid, st in list(self._streams.items()):
            st.min_score = scores.get(sid)

    # -- the pipeline's side -----------------------------------------------------------------------
    def _stream(self, cancel: threading.Event | None) -> Generator[Frame, None, None]:
        with self._cond:
            self._feeding = True
            for st in self._streams.values():
                self._start_feeder(st)
        try:
            while not self._stopped(cancel):
                with self._cond:
                    frame, wait_s = self._take(time.monotonic())
                    if frame is None:
                        if all(st.ended for st in self._streams.values()):
                            return
                        self._cond.wait(wait_s)  # woken by a feeder; else looks at cancel
                        continue
                yield frame
        finally:
            with self._cond:
                self._feeding = False
                feeders = list(self._streams.values())
            for st in feeders:
                self._stop_feeder(st)

    def _take(self, now: float) -> tuple[Frame | None, float]:
        """The waiting frame of the least-served stream, or (None, how long to wait) (called with the lock held).

        A file stream that is behind the one that would be served, has no frame ready yet and refilled its slot
        quickly last time gets its turn held for up to FAIR_WAIT_S: its empty slot is a reader thread not yet
        scheduled, not a slow source. Cameras, paced files and slow decoders are never waited for."""
        ready = [st for st in self._streams.values() if st.slot is not None]
        if not ready:
            return None, POLL_S
        st = min(ready, key=lambda s: s.taken)  # the first in list order on a tie
        behind = any(s.slot is None and not s.ended and not s.source.live and s.taken < st.taken
                     and s.refill_s is not None and s.refill_s < FAIR_WAIT_S for s in self._streams.values())
        if behind:
            if self._held_until is None:
                self._held_until = now + FAIR_WAIT_S
            if now < self._held_until:
                return None, self._held_until - now
        self._held_until = None
        frame, st.slot = st.slot, None
        st.taken += 1
        st.taken_at = now
        self._cond.notify_all()  # a file stream's feeder waits for its slot
        return frame, 0.0

    # -- feeders -----------------------------------------------------------------------------------
    def _start_feeder(self, st: _Stream) -> None:
        if st.ended or (st.feeder is not None and st.feeder.is_alive()):
            return
        st.cancel = threading.Event()
        st.feeder = threading.Thread(target=self._feed, args=(st,), name=f"edgeinfer-stream-{st.cfg.id}", daemon=True)
        st.feeder.start()

    def _stop_feeder(self, st: _Stream) -> None:
        st.cancel.set()
        with self._cond:
            self._cond.notify_all()
        if st.feeder is not None and st.feeder is not threading.current_thread():
            st.feeder.join(FEEDER_JOIN_S)
            if st.feeder.is_alive():
                log.warning("stream %s: its reader is still inside the source after %.0f s; it ends when that returns",
                            st.cfg.id, FEEDER_JOIN_S)

    def _feed(self, st: _Stream) -> None:
        delay = self._backoff[0]
        while not st.cancel.is_set():
            try:
                for frame in st.source.iterate(st.cancel):
                    if not self._offer(st, frame):
                        return
                    delay = self._backoff[0]
                if not st.cancel.is_set():
                    st.phase, st.reason = "finished", None
                    log.info("stream %s (%s) ended", st.cfg.id, st.source.uri)
                return
            except Exception as exc:
                why = str(exc) if isinstance(exc, EdgeInferError) else f"{type(exc).__name__}: {exc}"
                if not (st.source.live or st.cfg.loop):
                    st.phase, st.reason = "error", redact(why)
                    log.error("stream %s failed: %s (a file stream is not retried; the other streams go on)",
                              st.cfg.id, st.reason)
                    return
                if not self._retry(st, why, delay):
                    return
                delay = min(delay * 2, self._backoff[1])
            finally:
                with self._cond:
                    self._cond.notify_all()

    def _offer(self, st: _Stream, frame: Frame) -> bool:
        """Into the stream's slot: replacing an untaken live frame, or waiting for a file frame's turn."""
        frame.stream, frame.min_score = st.cfg.id, st.min_score
        if st.cfg.roi is not None:
            frame.roi = st.cfg.roi.pixels(frame.image.shape[1], frame.image.shape[0])
        with self._cond:
            if not st.source.live:
                while st.slot is not None and not st.cancel.is_set():
                    self._cond.wait(POLL_S)  # woken when the pipeline takes it; else looks at cancel
                if st.cancel.is_set():
                    return False
            elif st.slot is not None:
                st.replaced += 1
            st.slot = frame
            if st.taken_at is not None:
                st.refill_s = time.monotonic() - st.taken_at
            st.read += 1
            st.phase, st.reason = "running", None
            self._cond.notify_all()
        return True

    def _retry(self, st: _Stream, why: str, delay: float) -> bool:
        """Reopen the stream's source after ``delay``, keeping on until it opens or the stream is cancelled."""
        while True:
            st.phase, st.reason = "retrying", redact(f"{why} (retry in {delay:.0f} s)")
            log.error("stream %s: %s; retrying in %.0f s (the other streams go on)", st.cfg.id, redact(why), delay)
            if st.cancel.wait(delay):
                return False
            st.retries += 1
            try:
                fresh = self._opener(st.cfg)
            except EdgeInferError as exc:
                why, delay = exc.problem, min(delay * 2, self._backoff[1])
                continue
            old, st.source = st.source, fresh
            old.close()
            return True

    # -- updates in place ----------------------------------------------------------------------------
    def update(self, streams: list[StreamConfig], opened: dict[str, Source]) -> list[Source]:
        """Make the streams ``streams``: those in ``opened`` (new, or reopened with new settings) take their new
        source; removed ones stop; the rest keep running with their new region, threshold and rules. Returns the
        sources no longer used, for the caller to close (outside any lock of its own)."""
        retired: list[Source] = []
        want = {c.id: c for c in streams}
        with self._cond:
            gone = [st for sid, st in self._streams.items() if sid not in want or sid in opened]
        for st in gone:  # outside the lock: a feeder may be handing over its frame
            self._stop_feeder(st)
            retired.append(st.source)
        with self._cond:
            old = self._streams
            self._streams = {}
            level = min((st.taken for st in old.values()), default=0)  # a new stream starts level, not owed
            for c in streams:
                kept = old.get(c.id)
                if c.id in opened or kept is None:
                    kept = _Stream(c, opened[c.id], taken=level)
                    if self._feeding:
                        self._start_feeder(kept)
                else:
                    kept.cfg = c
                self._streams[c.id] = kept
            self.uri = "streams: " + ", ".join(self._streams)
            self.live = any(st.source.live or st.cfg.loop for st in self._streams.values())
            self._cond.notify_all()
        return retired

    def close(self) -> None:
        super().close()
        streams = list(self._streams.values())
        for st in streams:
            self._stop_feeder(st)
        for st in streams:
            st.source.close()
