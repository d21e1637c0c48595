"""Telemetry configuration (part of the one config schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TelemetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transport: str = Field(default="none", description="none, stdout, file:PATH, mqtt://host:port, mqtts://host:port?ca=..&cert=..&key=..")
    mode: Literal["summary", "results", "alerts-only"] = "summary"
    window_s: float = Field(default=60.0, gt=0, description="Summary window length in seconds")
