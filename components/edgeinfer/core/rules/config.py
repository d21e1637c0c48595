"""Rule configuration (part of the one config schema).

A rule: *when* a frame matches a condition (label, score, box area, count), *over* N consecutive
frames or a share of a time window, fire once, then stay quiet until the condition has cleared
(hysteresis) and the cooldown has passed; run its actions.

```yaml
rules:
  - name: person_at_door
    when: {label: person, min_score: 0.6, min_area: 0.02, min_count: 1}
    over: {frames: 5}                # or {window_s: 2.0, min_ratio: 0.8}
    cooldown_s: 30
    hysteresis: {clear_frames: 10, score_margin: 0.1}
    actions:
      - {type: alert, severity: warning}
      - {type: local_topic, topic: site/door/alarm}
      - {type: command, hook: door_light}   # a hook the device's local settings define (hooks:)
      - {type: webhook, url: "http://10.0.0.5:8080/hook", timeout_s: 3}
hooks:                                     # local settings only: a deployment names hooks, never argv
  door_light: {argv: [/usr/local/bin/door-light, "on"], timeout_s: 5}
```
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import scope
from ..telemetry.limits import topic_problem

MAX_ITEMS = 10_000  # detections in one frame: far above any decoder's top-k
MAX_FRAMES = 1_000_000  # consecutive frames: over 9 hours at 30 fps
ACTION_TIMEOUT_MAX_S = 600  # a hook that takes longer holds up every later action of the run


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Condition(_Strict):
    """What one frame must contain. Items are detections, top classes, or segmentation labels."""

    label: str | None = Field(default=None, description="Label to look for; None = any label")
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    min_area: float | None = Field(default=None, ge=0.0, le=1.0, description="Smallest box area, share of the frame")
    max_area: float | None = Field(default=None, ge=0.0, le=1.0, description="Largest box area, share of the frame")
    min_count: int = Field(default=1, ge=0, le=MAX_ITEMS, description="At least this many matching items")
    max_count: int | None = Field(default=None, ge=0, le=MAX_ITEMS,
                                  description="At most this many (0 with min_count 0 = absence)")

    @model_validator(mode="after")
    def _ranges(self) -> Condition:
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError("max_count must be >= min_count")
        if self.min_area is not None and self.max_area is not None and self.max_area < self.min_area:
            raise ValueError("max_area must be >= min_area")
        return self


class Over(_Strict):
    """How long the condition must hold: N consecutive frames, or a share of the frames in a window."""

    frames: int | None = Field(default=None, ge=1, le=MAX_FRAMES, description="N consecutive matching frames")
    window_s: float | None = Field(default=None, ge=0.1, le=3600, description="Time window in seconds (frame "
                                   "time), at most an hour: the window keeps one entry per frame")
    min_ratio: float = Field(default=1.0, gt=0.0, le=1.0, description="Window: share of frames that must match")

    @model_validator(mode="after")
    def _one(self) -> Over:
        if self.frames is None and self.window_s is None:
            self.frames = 1
        elif self.frames is not None and self.window_s is not None:
            raise ValueError("give either over.frames or over.window_s, not both")
        return self


class Hysteresis(_Strict):
    """Once fired, a rule re-arms only after the (relaxed) condition fails for ``clear_frames`` frames."""

    clear_frames: int = Field(default=1, ge=1, le=MAX_FRAMES)
    score_margin: float = Field(default=0.0, ge=0.0, le=1.0,
                                description="While fired, min_score is lowered by this much")


class AlertAction(_Strict):
    """An alert event through the outbox: highest priority, sent first, evicted last."""

    type: Literal["alert"] = "alert"
    severity: Literal["info", "warning", "critical"] = "warning"


class LocalTopicAction(_Strict):
    """The alert event, also published through the transport to a local topic."""

    type: Literal["local_topic"] = "local_topic"
    topic: str

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if problem := topic_problem(v):
            raise ValueError(problem)
        return v


class HookConfig(_Strict):
    """A program a command action may run: defined in the device's local settings (``hooks: {NAME: ...}``)."""

    argv: list[str] = Field(min_length=1, max_length=256, description="Program and arguments (no shell)")
    timeout_s: float = Field(default=10.0, ge=0.1, le=ACTION_TIMEOUT_MAX_S,
                             description="Kill the program after this long (actions run one at a time)")


class CommandAction(_Strict):
    """Runs a locally defined hook with the alert JSON on stdin (no shell, scrubbed environment, timeout)."""

    type: Literal["command"] = "command"
    hook: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Name of a hook in the local settings' hooks:")

    @model_validator(mode="before")
    @classmethod
    def _no_argv(cls, data: object) -> object:
        if isinstance(data, dict) and "argv" in data:
            raise ValueError("command actions name a hook: define it locally under hooks: {NAME: {argv: [...]}} "
                             "and write hook: NAME")
        return data


class WebhookAction(_Strict):
    """An HTTP POST of the alert JSON."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(pattern=r"^https?://", description="http:// or https:// URL",
                     json_schema_extra=scope.checked("webhook"))
    timeout_s: float = Field(default=5.0, ge=0.1, le=ACTION_TIMEOUT_MAX_S,
                             description="Give up on the request after this long (actions run one at a time)")
    headers: dict[str, str] = Field(default_factory=dict)


Action = Annotated[AlertAction | LocalTopicAction | CommandAction | WebhookAction, Field(discriminator="type")]


class RuleConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    enabled: bool = True
    when: Condition = Field(default_factory=Condition)
    over: Over = Field(default_factory=Over)
    cooldown_s: float = Field(default=0.0, ge=0.0, le=86_400,
                              description="Least time between two alerts of this rule (at most a day)")
    hysteresis: Hysteresis = Field(default_factory=Hysteresis)
    actions: list[Action] = Field(default_factory=lambda: list[Action]([AlertAction()]), min_length=1)

    @property
    def severity(self) -> Literal["info", "warning", "critical"]:
        return next((a.severity for a in self.actions if isinstance(a, AlertAction)), "warning")
