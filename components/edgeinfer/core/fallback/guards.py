"""Guard rails of the cloud fallback: a budget per minute and per UTC day, and a circuit breaker.

Both take their clocks as arguments, so tests step time instead of sleeping. Neither is thread-safe on its
own: the fallback service calls them under its lock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class Budget:
    """At most ``per_minute`` requests in any 60 s and ``per_day`` per UTC day."""

    def __init__(self, per_minute: int, per_day: int, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.per_minute, self.per_day = per_minute, per_day
        self._clock, self._wall = clock, wall
        self._recent: deque[float] = deque()
        self._day = self._today()
        self._today_used = 0

    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._wall(), dt.timezone.utc).date()

    def _roll(self) -> None:
        now = self._clock()
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if (today := self._today()) != self._day:
            self._day, self._today_used = today, 0

    def take(self) -> bool:
        """Spend one request; False (nothing spent) when either budget is used up."""
        self._roll()
        if len(self._recent) >= self.per_minute or self._today_used >= self.per_day:
            return False
        self._recent.append(self._clock())
        self._today_used += 1
        return True

    def left(self) -> dict[str, int]:
        self._roll()
        return {"minute": self.per_minute - len(self._recent), "day": self.per_day - self._today_used}


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``cooldown_s`` one trial request is let through
    (half open): its success closes the breaker, its failure opens it for another cooldown."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.cooldown_s = failures, cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial = False
        self.opened = 0  # times it opened

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._trial or self._clock() - self._opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        """Whether a request may go now (in half-open state: the one trial, until its outcome is recorded)."""
        if self._opened_at is None:
            return True
        if self._trial or self._clock() - self._opened_at < self.cooldown_s:
            return False
        self._trial = True
        return True

    def record(self, ok: bool) -> None:
        self._trial = False
        if ok:
            self._consecutive, self._opened_at = 0, None
            return
        self._consecutive += 1
        if self._opened_at is not None or self._consecutive >= self.failures:
            if self._opened_at is None:
                self.opened += 1
            self._opened_at = self._clock()
