"""The versioned telemetry event schema: result, summary, alert, health.

Every event carries ``v`` (schema version), ``type``, ``id`` (unique message id: receivers dedupe
by it), ``seq`` (monotonic per stream, persisted across restarts), ``device``, ``model_version`` and
``ts`` (UTC). Payloads are compact JSON: no spaces, absent optional fields left out.

The JSON Schema in ``docs/telemetry-schema.json`` is exported from these models:
``python -m edgeinfer.core.telemetry.events docs/telemetry-schema.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION: Literal[1] = 1
EventType = Literal["result", "cloud", "summary", "alert", "health"]

#: Outbox eviction order when space runs out: lowest first. Alerts go last (and are sent first).
#: A ``cloud`` answer (fallback) is worth what a result is.
PRIORITY: dict[str, int] = {"result": 0, "cloud": 0, "health": 1, "summary": 2, "alert": 3}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class EventBase(_Model):
    v: Literal[1] = Field(default=SCHEMA_VERSION, description="Schema version")
    type: str
    id: str = Field(default_factory=new_id, min_length=1, max_length=64, description="Unique message id; dedupe by it")
    seq: int = Field(default=0, ge=0, description="Monotonic per stream (event type), persisted across restarts; "
                     "0 until the outbox assigns it")
    device: str = Field(min_length=1)
    model_version: str
    ts: dt.datetime = Field(default_factory=utc_now, description="UTC time the event was made")

    priority: ClassVar[int] = 0

    def encode(self) -> bytes:
        """Compact JSON, absent fields left out: ``model_dump_json(exclude_none=True)`` as bytes, straight
        from the core serializer (no str round trip; this runs once per event on the hot path)."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)

    def stamp_seq(self, seq: int) -> None:
        """Set ``seq`` in place, past pydantic's assignment hooks: the outbox's own counter, once per event
        on the hot path (validation would only re-check an int it made)."""
        self.__dict__["seq"] = seq

    def with_seq(self, seq: int) -> EventBase:
        """A copy with ``seq`` set (the outbox stamps the stored event in place instead)."""
        return self.model_copy(update={"seq": seq})


class Det(_Model):
    label: str
    score: float
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in frame pixels")


class Cls(_Model):
    label: str
    score: float


class ResultEvent(EventBase):
    type: Literal["result"] = "result"
    stream: str | None = Field(default=None, description="The stream's id (sources:); absent with one source:")
    source: str
    frame: int
    width: int
    height: int
    task: str
    detections: list[Det] | None = None
    classes: list[Cls] | None = None
    areas: dict[str, float] | None = Field(default=None, description="Segmentation: label -> share of the frame")
    timings_ms: dict[str, float] = Field(default_factory=dict)

    priority: ClassVar[int] = PRIORITY["result"]


class CloudLocal(_Model):
    detections: int = Field(description="The local model's detections on the frame")
    best: float = Field(description="The local model's best score on the frame")


class CloudEvent(EventBase):
    """The cloud endpoint's answer for a frame sent by the fallback (core/fallback/), after its local result.
    Linked to that frame's ``result`` event (and results.jsonl line) by ``stream`` (with ``sources:``) +
    ``frame_source`` + ``frame``."""

    type: Literal["cloud"] = "cloud"
    source: Literal["cloud"] = Field(default="cloud", description="Who produced these results")
    stream: str | None = Field(default=None, description="The frame's stream id (sources:); absent with one source:")
    frame_source: str = Field(description="The frame's source: the local result's source")
    frame: int = Field(description="The frame's index: the local result's frame")
    frame_ts: float = Field(description="The frame's capture time (seconds since the epoch)")
    endpoint: str = Field(description="The endpoint's type: sagemaker, azureml, ...")
    trigger: Literal["uncertain", "degraded", "unavailable"] = Field(
        description="Why the frame went to the cloud; unavailable: no local model could run (no local result event, "
        "local is zero, no agreement)")
    task: str
    ok: bool = Field(description="False: no usable answer (error says why)")
    error: str | None = None
    latency_ms: float = Field(ge=0, description="Request to answer, on the device's clock")
    crop: tuple[int, int, int, int] | None = Field(default=None, description="The region sent (x1, y1, x2, y2), "
                                                   "absent when the whole frame was")
    detections: list[Det] | None = Field(default=None, description="The cloud's detections, in frame pixels")
    classes: list[Cls] | None = None
    agreement: float | None = Field(default=None, description="F1 of the local detections against the cloud's "
                                    "(matched by label and IoU >= fallback.iou); 1.0 = the same")
    local: CloudLocal

    priority: ClassVar[int] = PRIORITY["cloud"]


class FallbackState(_Model):
    """The cloud fallback's counts (since start in health; over the window in a summary)."""

    endpoint: str
    frames: int = Field(description="Frames the fallback saw")
    triggered: int = Field(description="Frames in the uncertainty band (or on a degraded backend)")
    sent: int = Field(description="Frames sent to the endpoint")
    answered: int
    failed: int = Field(description="Sent frames without a usable answer (timeouts, errors, refusals)")
    disagreed: int = Field(default=0, description="Answers whose agreement was below fallback.agree_at")
    skipped: dict[str, int] = Field(default_factory=dict, description="Triggered frames not sent, by reason: "
                                    "offline, breaker, busy (queue full), budget, encode")
    rate: float | None = Field(default=None, description="Fallback rate: sent / frames")
    latency_ms_p50: float | None = None
    agreement: float | None = Field(default=None, description="Mean cloud/local agreement (F1) of the answers")
    budget_left: dict[str, int] = Field(default_factory=dict, description="Requests left: minute, day")
    breaker: Literal["closed", "open", "half_open"]
    breaker_opened: int = Field(default=0, description="Times the breaker opened")


class CaptureState(_Model):
    """The capture queue of the data loop (core/captures/)."""

    queued: int = Field(description="Frames waiting on disk to be uploaded")
    bytes: int
    captured: dict[str, int] = Field(default_factory=dict, description="Frames captured since start, by reason")
    evicted: int = Field(default=0, description="Oldest frames removed to keep within the cap")
    uploaded: int = 0
    upload_failed: int = 0
    last_error: str | None = None


class Percentiles(_Model):
    p50: float
    p95: float
    p99: float


class ShadowLabel(_Model):
    active: int = Field(description="The active model's detections")
    candidate: int = Field(description="The candidate's detections")
    matched: int = Field(description="Pairs of the same label with IoU >= shadow.iou")
    precision: float | None = Field(default=None, description="matched / candidate")
    recall: float | None = Field(default=None, description="matched / active")
    score_delta: float | None = Field(default=None, description="Mean candidate - active score over matched pairs")


class ShadowState(_Model):
    """A shadow candidate against the active model (core/shadow.py)."""

    model_version: str
    frames: int = Field(description="Frames both models ran on")
    agreement: float | None = Field(default=None, description="F1 of the candidate against the active model "
                                    "(classification: share of equal top classes); 1.0 = the same results")
    labels: dict[str, ShadowLabel] = Field(default_factory=dict)
    candidate_infer_ms_p50: float | None = None
    offered: int = Field(default=0, description="Frames offered to the candidate")
    skipped: int = Field(default=0, description="Offered frames it skipped (busy, or resting within its CPU budget)")
    error: str | None = Field(default=None, description="Why the candidate stopped, if it did")


class StreamWindow(_Model):
    frames: int = Field(ge=0)
    dropped: int = Field(default=0, ge=0, description="Gaps in the stream's frame indices")
    labels: dict[str, int] = Field(default_factory=dict, description="Detections (or top-1 classes) per label")


class SummaryEvent(EventBase):
    type: Literal["summary"] = "summary"
    start: float = Field(description="Window start, frame time (seconds since the epoch)")
    end: float = Field(description="Window end, frame time")
    frames: int = Field(ge=0)
    dropped: int = Field(default=0, ge=0, description="Frames skipped by the pipeline (gaps in frame indices)")
    fps: float = Field(ge=0)
    labels: dict[str, int] = Field(default_factory=dict, description="Detections (or top-1 classes) per label")
    hist: list[int] = Field(default_factory=list, description="Score histogram: 10 equal bins over [0, 1]")
    latency_ms: dict[str, Percentiles] = Field(default_factory=dict, description="Per pipeline stage")
    results_bytes: int = Field(default=0, ge=0, description="Bytes per-frame result events would have cost")
    raw_bytes: int = Field(default=0, ge=0, description="Bytes of the raw frames (W*H*3)")
    shadow: ShadowState | None = Field(default=None, description="The shadow candidate against the active model, "
                                       "over this window (absent without a shadow)")
    fallback: FallbackState | None = Field(default=None, description="The cloud fallback over this window (absent "
                                           "when it is off)")
    streams: dict[str, StreamWindow] | None = Field(default=None, description="Per stream id over this window "
                                                    "(sources:); absent with one source:")

    priority: ClassVar[int] = PRIORITY["summary"]


class Evidence(_Model):
    stream: str | None = Field(default=None, description="The stream's id (sources:); absent with one source:")
    source: str
    frame: int
    frame_ts: float
    since_ts: float = Field(description="Frame time the matching run or window started")
    matched: int = Field(description="Matching frames (consecutive, or in the window)")
    considered: int = Field(description="Frames looked at (N, or frames in the window)")
    count: int = Field(description="Matching items in the triggering frame")
    max_score: float
    items: list[Det | Cls] = Field(default_factory=list, description="Matching items of the triggering frame")


class AlertEvent(EventBase):
    type: Literal["alert"] = "alert"
    rule: str
    severity: Literal["info", "warning", "critical"] = "warning"
    evidence: Evidence

    priority: ClassVar[int] = PRIORITY["alert"]


class ModelInfo(_Model):
    name: str
    version: str
    sha256: str


class BackendState(_Model):
    backend: str
    device: str
    precision: str
    requested: list[str] = Field(default_factory=list)
    active: list[str] = Field(default_factory=list)


class OutboxState(_Model):
    depth: int
    bytes: int
    oldest_age_s: float | None = None
    evicted: dict[str, int] = Field(default_factory=dict, description="Events evicted for space, per type")
    rejected: int = Field(default=0, description="Events refused for good (too large, refused by the peer)")


class TransportState(_Model):
    transport: str
    connected: bool
    error: str | None = None
    sent_events: int = 0
    sent_bytes: int = 0


class TelemetryState(_Model):
    degraded: bool = Field(default=False, description="True while the outbox cannot store events (disk full, "
                           "I/O error, read-only): they are dropped and counted; inference goes on")
    reason: str | None = Field(default=None, description="While degraded: why, one line (e.g. 'outbox write "
                               "failed: database or disk is full')")
    since: dt.datetime | None = Field(default=None, description="While degraded: UTC time it began")
    write_failed: int = Field(default=0, ge=0, description="Events dropped since start because the outbox "
                              "could not store them")
    write_failed_by_type: dict[str, int] | None = Field(default=None, description="write_failed per event type "
                                                        "(absent while none)")
    last_error: str | None = Field(default=None, description="The latest write failure, kept after recovery")


class NucleusState(_Model):
    """What the Greengrass nucleus under the component does not offer (absent outside Greengrass)."""

    missing: list[str] = Field(default_factory=list, description="IPC operations this nucleus answered with an "
                               "error (e.g. Greengrass Lite: SubscribeToValidateConfigurationUpdates, "
                               "PutComponentMetric, ...): the component does without them")
    config_refused: str | None = Field(default=None, description="The latest configuration refused on arrival "
                                       "(a nucleus without validation events), with the reason; the running one "
                                       "stayed")
    config_refused_at: dt.datetime | None = Field(default=None, description="UTC time of that refusal")


class Probation(BaseModel):
    """A model on probation (core/probation.py)."""

    model_config = ConfigDict(extra="forbid")

    model_version: str
    previous_version: str = Field(description="The model it is judged against, kept loaded to roll back to")
    since: str = Field(description="UTC time of the switch (ISO 8601)")
    results: int = Field(description="The new model's results so far")
    needs: int = Field(description="Results needed before a verdict")
    window_s: float
    failures: int = Field(description="Pipeline failures since the switch")


class Rollback(BaseModel):
    """A model the health gate rolled back: the device runs ``to`` again."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)  # "from": a keyword

    from_: str = Field(alias="from", description="The version rolled back")
    to: str = Field(description="The version running again")
    reason: str = Field(description="The bound it breached, with the figures")
    at: str = Field(description="UTC time of the rollback (ISO 8601)")


class StreamState(_Model):
    """One stream of ``sources:``: fails, waits and recovers on its own."""

    state: Literal["running", "waiting", "retrying", "finished", "error"]
    reason: str | None = Field(default=None, description="Why it does not deliver: the camera it waits for, the "
                               "error it retries after")
    frames: int = Field(default=0, ge=0, description="Frames inferred since the pipeline started")
    dropped: int = Field(default=0, ge=0, description="Stale live frames replaced before inference")
    bad: int = Field(default=0, ge=0, description="Unreadable or wrong-sized frames skipped")
    retries: int = Field(default=0, ge=0, description="Times its source was opened again after a failure")


class RunState(BaseModel):
    """The run session's state, as status() and the IoT Edge reported properties say it."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["starting", "running", "waiting", "restarting", "finished", "error", "stopped"]
    reason: str | None = Field(default=None, description="Why it is not running: the source it waits for, the "
                               "error it restarts from")
    degraded: list[str] = Field(default_factory=list, description="What does not work while inference goes on")
    probation: Probation | None = Field(default=None, description="The model on probation after a switch, until "
                                        "the health gate keeps or rolls it back")
    rollback: Rollback | None = Field(default=None, description="The latest rollback by the health gate since the "
                                      "process started")
    shadow: ShadowState | None = Field(default=None, description="The shadow candidate since it started")
    fallback: FallbackState | None = Field(default=None, description="The cloud fallback since it started")
    captures: CaptureState | None = Field(default=None, description="The capture queue since it started")
    streams: dict[str, StreamState] | None = Field(default=None, description="Each stream of sources: by id "
                                                   "(absent with one source:)")


class HealthEvent(EventBase):
    type: Literal["health"] = "health"
    model: ModelInfo
    backend: BackendState
    degraded: bool = False
    reason: str | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    mem_percent: float | None = Field(default=None, description="System memory in use, percent")
    temperature_c: float | None = Field(default=None, description="Hottest readable sensor, None if none")
    queues: dict[str, int] = Field(default_factory=dict, description="Pipeline queue depths")
    outbox: OutboxState | None = None
    transport: TransportState | None = None
    telemetry: TelemetryState | None = Field(default=None, description="Telemetry's own state: degraded while "
                                             "events cannot be stored")
    invalid: int = Field(default=0, description="Events that failed validation since start")
    uptime_s: float = 0.0
    run: RunState | None = Field(default=None, description="What the run session is doing (absent outside one)")
    cause: Literal["rollback", "probation_passed"] | None = Field(
        default=None, description="Set only on the health event sent at that moment: the health gate rolled a "
        "model back, or kept it after its probation. A rule counting rollbacks selects cause = 'rollback' (every "
        "later health event still carries run.rollback)")
    nucleus: NucleusState | None = Field(default=None, description="What the Greengrass nucleus does not offer, "
                                         "and a configuration refused on arrival (absent outside Greengrass)")

    priority: ClassVar[int] = PRIORITY["health"]


TelemetryEvent = Annotated[ResultEvent | CloudEvent | SummaryEvent | AlertEvent | HealthEvent,
                           Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(TelemetryEvent)


def parse_event(data: bytes | str | dict[str, Any]) -> EventBase:
    """Validate one received event (bytes/str JSON or a dict)."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


def export_schema() -> dict[str, Any]:
    schema = EVENT_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"edgeinfer telemetry event, schema version {SCHEMA_VERSION}"
    schema["description"] = ("One event per message, or a JSON array of events when batching is on "
                             "(see docs/telemetry.md). Receivers dedupe by id.")
    return schema


def schema_text() -> str:
    return json.dumps(export_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover - regenerates docs/telemetry-schema.json
    Path(sys.argv[1]).write_text(schema_text())
