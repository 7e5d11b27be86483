"""A deduplicating work queue of object keys, in the style of client-go's workqueue.

Watch events for a ModelDeployment and for everything it owns only *enqueue* its key; workers
reconcile the latest state of the key. A burst of events (a Deployment's status changes three
times while its pods start) collapses into one reconcile, and a key is never reconciled by two
workers at once: a key enqueued while it is being processed is marked dirty and processed again
afterwards, so no change is lost and no two writers race on one object's status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)
BACKOFF_BASE = 1.0
BACKOFF_MAX = 300.0


class ExpectedFailure(Exception):
    """A failure already explained in status and one log line (an API error): no traceback."""


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._failures: dict[K, int] = {}
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()  # in the queue, not yet picked up
        self._processing: set[K] = set()
        self._dirty: set[K] = set()  # enqueued again while processing
        self._delayed: dict[K, asyncio.TimerHandle] = {}

    def add(self, key: K) -> None:
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Enqueue later (a retry, a requeue to re-check a rollout); earlier requests win."""
        loop = asyncio.get_running_loop()
        existing = self._delayed.get(key)
        if existing is not None:
            if existing.when() <= loop.time() + delay:
                return
            existing.cancel()
        self._delayed[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def forget(self, key: K) -> None:
        """Drop pending retries of a key (its object is gone)."""
        self._failures.pop(key, None)
        handle = self._delayed.pop(key, None)
        if handle is not None:
            handle.cancel()

    def __len__(self) -> int:
        return len(self._queued) + len(self._dirty)

    async def get(self) -> K:
        key = await self._queue.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def failed(self, key: K) -> float:
        """Record a failed reconcile of ``key``; the delay before it is retried.

        Per-key exponential backoff as client-go's ItemExponentialFailureRateLimiter does it:
        1 s, 2 s, 4 s, ... up to 5 minutes, so a few broken objects cannot keep the operator
        (and the API server) busy; a success resets it (``succeeded``)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return float(min(BACKOFF_MAX, BACKOFF_BASE * 2**failures))

    def succeeded(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def run_workers(self, count: int, handle: Callable[[K], Awaitable[None]]) -> None:
        """Run ``count`` workers forever; ``handle`` exceptions are logged, never fatal."""

        async def worker() -> None:
            while True:
                key = await self.get()
                try:
                    await handle(key)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    first = self.failures(key) == 0
                    delay = self.failed(key)
                    if first and not isinstance(e, ExpectedFailure):
                        log.exception("reconciling %s failed; retrying in %.0fs", key, delay)
                    else:
                        # One line per failure after the first: a broken object must not flood
                        # the log with the same traceback every retry.
                        log.warning(
                            "reconciling %s failed (%d in a row): %s: %s; retrying in %.0fs",
                            key,
                            self.failures(key),
                            type(e).__name__,
                            e,
                            delay,
                        )
                    self.add_after(key, delay)
                else:
                    self.succeeded(key)
                finally:
                    self.done(key)

        await asyncio.gather(*(worker() for _ in range(count)))
