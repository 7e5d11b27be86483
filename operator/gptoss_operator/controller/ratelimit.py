"""A per-object budget of reconciles that write, so no object can cause a write storm.

A healthy object writes a few times while it comes up and then never again; an object stuck
in a loop (something keeps undoing what the operator applies) would write on every event. A
token bucket per key (burst ``burst``, one token every ``refill_seconds``) lets the first case
through untouched and turns the second into a slow retry with one log line, instead of
hundreds of writes a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


class WriteRateLimited(Exception):
    """The object used up its write budget; its reconcile is retried later."""


@dataclass
class WriteLimiter:
    burst: int = 30
    refill_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[Hashable, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, at)

    def take(self, key: Hashable) -> None:
        """Spend one token for ``key``, or raise :class:`WriteRateLimited`."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.refill_seconds)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) * self.refill_seconds
            raise WriteRateLimited(
                f"{key}: more than {self.burst} writing reconciles in a burst; next in {wait:.0f}s"
            )
        self._buckets[key] = (tokens - 1, now)

    def forget(self, key: Hashable) -> None:
        self._buckets.pop(key, None)
