"""Telemetry configuration (part of the one config schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import scope
from .limits import MAX_PAYLOAD_BYTES, template_problem

TelemetryMode = Literal["summary", "results", "alerts-only"]


class RetryConfig(BaseModel):
    """Exponential backoff with jitter between delivery attempts (and MQTT reconnects)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    initial_s: float = Field(default=0.5, ge=0.01, le=3600, description="First delay after a failed attempt")
    max_s: float = Field(default=60.0, ge=0.01, le=3600, description="Longest delay between attempts (at most an "
                         "hour: a device offline longer still tries hourly)")
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0, description="Delay growth per consecutive failure")
    jitter: float = Field(default=0.5, ge=0.0, le=1.0,
                          description="Fraction of each delay that is randomised: delay * (1 - jitter * U[0,1))")

    @model_validator(mode="after")
    def _order(self) -> RetryConfig:
        if self.max_s < self.initial_s:
            raise ValueError("retry.max_s must be >= retry.initial_s")
        return self


class TelemetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    transport: str = Field(default="none", description="none, stdout, file:PATH, mqtt://host:port, "
                           "mqtts://host:port?ca=..&cert=..&key=.. (see docs/telemetry.md)",
                           json_schema_extra=scope.checked("transport"))
    mode: TelemetryMode = Field(default="summary", description="summary: one event per window; results: one per "
                                "frame; alerts-only. Alerts and health are sent in every mode")
    window_s: float = Field(default=60.0, ge=1, le=86_400, description="Summary window length in seconds (frame "
                            "time), 1 s to a day: shorter is one message per frame, use mode results for that")
    topic: str = Field(default="edgeinfer/{device}/{type}",
                       description="Topic template; fields {device}, {type}, {model}, {component}; at most 7 "
                       "slashes")
    batch: bool = Field(default=False, description="Send JSON-array batches where the transport allows "
                        "(MQTT); False = one event per message")
    max_batch_events: int = Field(default=100, ge=1, le=10_000, description="Most events in one batch message")
    batch_linger_s: float = Field(default=0.0, ge=0, le=60, description="With batch: a partial batch waits up to "
                                  "this long (from its oldest event) to fill; alerts never wait. 0 = send at once. "
                                  "Longer: fewer, fuller messages billed, events later")
    gzip: bool = Field(default=False, description="Gzip message payloads where the transport allows (MQTT)")
    max_payload_bytes: int = Field(default=MAX_PAYLOAD_BYTES, ge=1024, le=MAX_PAYLOAD_BYTES,
                                   description="Largest message payload (AWS IoT Core: 128 KB)")
    max_outbox_bytes: int = Field(default=64 * 1024 * 1024, ge=4096, le=1 << 40,
                                  description="Outbox bound; when full: results evicted first, then health, "
                                  "summaries, alerts last")
    fsync: Literal["normal", "full"] = Field(default="normal", description="SQLite synchronous level: normal "
                                             "survives kill -9; full also survives power loss (slower)")
    drain_timeout_s: float = Field(default=30.0, ge=0, le=600, description="On exit, keep delivering for this "
                                   "long (at most 10 min: a supervisor that stops the device waits for it)")
    health_interval_s: float = Field(default=60.0, ge=1, le=86_400, description="Seconds between health events "
                                     "(1 s to a day: each one is a billed message)")
    send_timeout_s: float = Field(default=10.0, ge=0.1, le=600,
                                  description="Wait this long for acknowledgements (PUBACK)")
    max_inflight: int = Field(default=500, ge=1, le=65_535,
                              description="Messages handed to the transport per attempt")
    retry: RetryConfig = Field(default_factory=RetryConfig)

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if problem := template_problem(v):
            raise ValueError(problem)
        return v
