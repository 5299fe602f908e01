"""A circuit breaker per source: a source that keeps failing is skipped at once until it may have recovered.

Closed: calls go through; ``failures`` consecutive failures open it. Open: calls fail at once for
``reset_seconds``. Then one trial call goes through (half-open): success closes it, failure opens it again.
Hand-written (30 lines) rather than a dependency: the state is per process and per source URL, the clock
must be injectable in tests, and the available async breakers add storage back-ends we do not need.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitOpen(Exception):
    """The source failed repeatedly and is not being asked until its reset time."""


class Breaker:
    def __init__(self, *, failures: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.reset_seconds, self.clock = failures, reset_seconds, clock
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_seconds else "open"

    def before_call(self) -> None:
        state = self.state
        if state == "open" or (state == "half-open" and self._trial_running):
            raise CircuitOpen
        self._trial_running = state == "half-open"

    def succeeded(self) -> None:
        self.failures, self.opened_at, self._trial_running = 0, None, False

    def failed(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = self.clock()
