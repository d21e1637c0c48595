"""Drive a rollout: read every ring, abort a failing one, deploy the next after a passed one.

Stateless: everything it needs is in the cloud (the rings' deployments, their aggregates, abort marks), so
``status`` and ``advance`` can run from a laptop, a CI job or the CDK Lambda, in any order, any number of
times. A cloud maps onto it through ``RolloutDriver``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .plan import Ring, RolloutPlan
from .progress import RingProgress, State, judge

log = logging.getLogger(__name__)
Outcome = Literal["not started", "in progress", "done", "aborted"]


class RolloutDriver(Protocol):
    def ring_progress(self, plan: RolloutPlan, ring: Ring) -> RingProgress: ...

    def deploy_ring(self, plan: RolloutPlan, ring: Ring) -> str: ...

    def abort_ring(self, plan: RolloutPlan, ring: Ring, progress: RingProgress, why: str) -> None: ...


@dataclass
class RingView:
    ring: Ring
    progress: RingProgress
    state: State
    why: str


@dataclass
class RolloutStatus:
    plan: RolloutPlan
    rings: list[RingView]
    actions: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        states = [v.state for v in self.rings]
        if "aborted" in states:
            return "aborted"
        if all(s == "passed" for s in states):
            return "done"
        return "not started" if all(s == "pending" for s in states) else "in progress"

    @property
    def calls(self) -> int:
        return sum(v.progress.calls for v in self.rings)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def status(driver: RolloutDriver, plan: RolloutPlan, now: Callable[[], dt.datetime] = utcnow) -> RolloutStatus:
    views = []
    for ring in plan.rings:
        p = driver.ring_progress(plan, ring)
        views.append(RingView(ring, p, *judge(p, plan.health, ring.soak_s, now())))
    return RolloutStatus(plan, views)


def advance(driver: RolloutDriver, plan: RolloutPlan, now: Callable[[], dt.datetime] = utcnow,
            start: bool = False) -> RolloutStatus:
    """One step: abort the first failing ring, or deploy the ring after the last passed one (ring 0 only when
    ``start``). Returns the status after the step, with what was done in ``actions``."""
    st = status(driver, plan, now)
    actions: list[str] = []
    for i, view in enumerate(st.rings):
        if view.state == "passed":
            continue
        if view.state == "failing":
            driver.abort_ring(plan, view.ring, view.progress, view.why)
            actions.append(f"aborted ring {view.ring.name}: {view.why}")
            log.warning("rollout %s: aborted ring %s: %s", plan.name, view.ring.name, view.why)
        elif view.state == "pending" and (i > 0 or start):
            deployment = driver.deploy_ring(plan, view.ring)
            actions.append(f"deployed ring {view.ring.name} ({deployment})")
            log.info("rollout %s: ring %s deployed as %s", plan.name, view.ring.name, deployment)
        break
    if actions:
        st = status(driver, plan, now)
    st.actions = actions
    return st


def run(driver: RolloutDriver, plan: RolloutPlan, timeout_s: float, poll_s: float = 60.0,
        on_step: Callable[[RolloutStatus], None] = lambda _: None, now: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
        start: bool = False) -> RolloutStatus:
    """``advance`` every ``poll_s`` until the rollout is done or aborted, or ``timeout_s`` passes."""
    deadline = monotonic() + timeout_s
    st = advance(driver, plan, now, start)
    while True:
        on_step(st)
        if st.outcome in ("done", "aborted") or monotonic() >= deadline:
            return st
        sleep(poll_s)
        st = advance(driver, plan, now)
