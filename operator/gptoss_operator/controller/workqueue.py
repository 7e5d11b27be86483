"""A deduplicating work queue of object keys, in the style of client-go's workqueue.

Watch events for a ModelDeployment and for everything it owns only *enqueue* its key; workers
reconcile the latest state of the key. A burst of events (a Deployment's status changes three
times while its pods start) collapses into one reconcile, and a key is never reconciled by two
workers at once: a key enqueued while it is being processed is marked dirty and processed again
afterwards, so no change is lost and no two writers race on one object's status.

Two lanes, each first in, first out. Follow-ups (the cluster acted on an object's children: a
Deployment's status changed, a pod started; a held status write is due) are taken before other
work (a new or edited object, a relist, a retry). When a thousand objects are created at once,
their first reconciles queue for many seconds behind the API server; without the lanes every
object that is already serving waits behind that whole backlog before its Ready status is
written, and no object reports Ready until the last one has its children. controller-runtime's
priority queue makes the same choice the other way round (the adds of a controller's initial
list go last). A key queued in the slow lane that gets a follow-up moves to the fast one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)
BACKOFF_BASE = 1.0
BACKOFF_MAX = 300.0
FOLLOW_UP, OTHER = 0, 1  # lanes, in the order workers take them


class ExpectedFailure(Exception):
    """A failure already explained in status and one log line (an API error): no traceback."""


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._failures: dict[K, int] = {}
        # (key, ticket) entries. While a key waits, _queued holds its lane and the ticket of its
        # live entry; an entry with another ticket was left behind (the key moved to the fast
        # lane, or was taken and queued again) and get() skips it.
        self._lanes: tuple[deque[tuple[K, int]], deque[tuple[K, int]]] = (deque(), deque())
        self._queued: dict[K, tuple[int, int]] = {}
        self._tickets = 0
        # One token per entry appended, so each add wakes one waiting worker (an Event would
        # wake every worker for every add). Tokens never run short of live entries: a get takes
        # one token and at least one entry, stale ones included.
        self._tokens: asyncio.Queue[None] = asyncio.Queue()
        self._processing: set[K] = set()
        self._dirty: dict[K, int] = {}  # enqueued again while processing -> lane
        self._delayed: dict[K, asyncio.TimerHandle] = {}

    def add(self, key: K, *, follow_up: bool = False) -> None:
        lane = FOLLOW_UP if follow_up else OTHER
        if key in self._processing:
            self._dirty[key] = min(lane, self._dirty.get(key, lane))
            return
        queued = self._queued.get(key)
        if queued is not None and queued[0] <= lane:
            return
        self._tickets += 1
        self._queued[key] = (lane, self._tickets)
        self._lanes[lane].append((key, self._tickets))
        self._tokens.put_nowait(None)

    def add_after(self, key: K, delay: float, *, follow_up: bool = False) -> None:
        """Enqueue later (a retry, a held status write); earlier requests win."""
        loop = asyncio.get_running_loop()
        existing = self._delayed.get(key)
        if existing is not None:
            if existing.when() <= loop.time() + delay:
                return
            existing.cancel()
        self._delayed[key] = loop.call_later(delay, self._fire, key, follow_up)

    def _fire(self, key: K, follow_up: bool) -> None:
        self._delayed.pop(key, None)
        self.add(key, follow_up=follow_up)

    def queued(self) -> frozenset[K]:
        """The keys waiting to be picked up (not those being processed)."""
        return frozenset(self._queued)

    def forget(self, key: K) -> None:
        """Drop pending retries of a key (its object is gone)."""
        self._failures.pop(key, None)
        handle = self._delayed.pop(key, None)
        if handle is not None:
            handle.cancel()

    def __len__(self) -> int:
        return len(self._queued) + len(self._dirty)

    async def get(self) -> K:
        while True:
            await self._tokens.get()
            for lane, entries in enumerate(self._lanes):
                while entries:
                    key, ticket = entries.popleft()
                    if self._queued.get(key) == (lane, ticket):
                        del self._queued[key]
                        self._processing.add(key)
                        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        lane = self._dirty.pop(key, None)
        if lane is not None:
            self.add(key, follow_up=lane == FOLLOW_UP)

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
