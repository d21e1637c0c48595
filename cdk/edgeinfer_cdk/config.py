"""The fleet's names and options, read from CDK context (``cdk.json`` or ``-c key=value``).

Every name has a default derived from ``fleet``, so ``cdk deploy -c fleet=plant7`` stands up a second,
independent fleet in the same account. Values are checked here, before any resource is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from edgeinfer.core.config import one_line
from edgeinfer.core.telemetry.config import TelemetryConfig

from .rollout_lambda.plan import RolloutSettings

NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
THING_GROUP = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
MODEL_GROUP = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")  # lower case: SageMaker lower-cases it in ARNs


class ConfigError(ValueError):
    """A context value the fleet cannot be built with; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class FleetConfig:
    fleet: str = "edgeinfer"
    thing_group: str = ""  # default: <fleet>-fleet
    core_thing_prefix: str = ""  # default: <fleet>-   (Greengrass core things must be named <prefix>...)
    model_package_group: str = ""  # default: <fleet>-models
    telemetry_topic: str = TelemetryConfig().topic
    region: str | None = None
    account: str | None = None
    alert_email: str | None = None
    telemetry_expire_days: int = 365
    nucleus_version: str = "2.15.1"
    disk_spooler_version: str = "1.0.6"
    spooler_max_bytes: int = 16 * 1024 * 1024
    baseline_deployment: bool = False
    #: fleet alarms (dashboard.py): mean fps below, p95 of the devices' p95 latency above (ms), degraded health
    #: reports per 5 minutes at or above, largest outbox above (events), alerts per 5 minutes above
    alarm_min_fps: float = 1.0
    alarm_latency_p95_ms: float = 1000.0
    alarm_degraded_reports: int = 1
    alarm_outbox_depth: int = 1000
    alarm_alerts: int = 50
    #: the rollout plan an approval starts (cdk.json ``rollout``: rings, health, aws, advance_every_minutes);
    #: rings default to canary (<fleet>-canary, 1 h soak) -> fleet (thing_group)
    rollout: RolloutSettings | None = None

    def __post_init__(self) -> None:
        defaults = {"thing_group": f"{self.fleet}-fleet", "core_thing_prefix": f"{self.fleet}-",
                    "model_package_group": f"{self.fleet}-models"}
        for key, value in defaults.items():
            if not getattr(self, key):
                object.__setattr__(self, key, value)
        if self.rollout is None:
            object.__setattr__(self, "rollout", parse_rollout({}, self.default_rings()))
        self._check()

    def default_rings(self) -> list[dict[str, Any]]:
        return [{"name": "canary", "target": f"{self.fleet}-canary", "soak_s": 3600},
                {"name": "fleet", "target": self.thing_group, "soak_s": 0}]

    @property
    def plan(self) -> RolloutSettings:
        """The rollout plan template (always set after construction)."""
        assert self.rollout is not None
        return self.rollout

    def _check(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("fleet", bool(NAME.match(self.fleet)), "3-32 characters: lower-case letters, digits and '-'"),
            ("thing_group", bool(THING_GROUP.match(self.thing_group)), "letters, digits, ':', '_' or '-'"),
            ("core_thing_prefix", bool(THING_GROUP.match(self.core_thing_prefix)),
             "the start of every Greengrass core's thing name (letters, digits, ':', '_' or '-')"),
            ("model_package_group", bool(MODEL_GROUP.match(self.model_package_group)),
             "lower-case letters, digits and '-' (at most 63)"),
            ("nucleus_version", bool(SEMVER.match(self.nucleus_version)), "a version such as 2.15.1"),
            ("disk_spooler_version", bool(SEMVER.match(self.disk_spooler_version)), "a version such as 1.0.6"),
            ("spooler_max_bytes", self.spooler_max_bytes >= 1024 * 1024, "at least 1 MiB"),
            ("telemetry_expire_days", self.telemetry_expire_days >= 1, "a number of days >= 1"),
            ("alarm_min_fps", self.alarm_min_fps > 0, "frames per second > 0"),
            ("alarm_latency_p95_ms", self.alarm_latency_p95_ms > 0, "milliseconds > 0"),
            ("alarm_degraded_reports", self.alarm_degraded_reports >= 1, "a number of reports >= 1"),
            ("alarm_outbox_depth", self.alarm_outbox_depth >= 1, "a number of events >= 1"),
            ("alarm_alerts", self.alarm_alerts >= 1, "a number of alerts >= 1"),
        ]
        for key, ok, want in checks:
            if not ok:
                raise ConfigError(f"context {key}={getattr(self, key)!r} is not usable: expected {want}")
        for ring in self.plan.rings:
            if not THING_GROUP.match(ring.target):
                raise ConfigError(f"context rollout: ring {ring.name} target {ring.target!r} is not a thing group name "
                                  "(letters, digits, ':', '_' or '-')")
        try:
            TelemetryConfig(topic=self.telemetry_topic)
        except ValueError as exc:
            raise ConfigError(f"context telemetry_topic={self.telemetry_topic!r}: {exc}") from exc

    @classmethod
    def from_context(cls, get: Callable[[str], Any], env: dict[str, str] | None = None) -> FleetConfig:
        """Build from ``node.try_get_context``; region/account fall back to CDK_DEFAULT_* from ``env``."""
        env = env or {}
        values: dict[str, Any] = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = get(name)
            if raw is None or raw == "":
                continue
            values[name] = raw if name == "rollout" else _coerce(name, raw, field.default)
        if "rollout" in values:
            rings = cls(**{k: v for k, v in values.items() if k != "rollout"}).default_rings()
            values["rollout"] = parse_rollout(values["rollout"], rings)
        values.setdefault("region", env.get("CDK_DEFAULT_REGION"))
        values.setdefault("account", env.get("CDK_DEFAULT_ACCOUNT"))
        return cls(**values)


def parse_rollout(raw: Any, default_rings: list[dict[str, Any]]) -> RolloutSettings:
    """Context ``rollout``: a JSON object (cdk.json) or its text (``-c rollout='{...}'``); rings default."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(data, dict):
            raise ConfigError(f"context rollout={raw!r} is not a JSON object (keys: rings, health, aws, "
                              "advance_every_minutes; docs/cdk.md)")
        return RolloutSettings.model_validate({"rings": default_rings, **data})
    except json.JSONDecodeError as exc:
        raise ConfigError(f"context rollout is not JSON: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"context rollout is not a usable rollout plan: {one_line(exc)} (docs/rollouts.md "
                          "lists the keys)") from exc


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Context from ``-c`` arrives as strings; from cdk.json as JSON types."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1", "yes", "false", "0", "no"):
                return str(raw).lower() in ("true", "1", "yes")
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"context {name}={raw!r} is not a {type(default).__name__}") from exc
    return str(raw)
