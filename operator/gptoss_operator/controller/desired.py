"""What a controller's decide step returns, for any kind: ordered writes and a status change.

Shared by every controller so that one writer (``controller/write.py``) carries out any of them.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gptoss_operator.status import Event

JSON = dict[str, Any]


@dataclass(frozen=True)
class Apply:
    manifest: JSON


@dataclass(frozen=True)
class Delete:
    kind: str
    name: str


Write = Apply | Delete


@dataclass(frozen=True)
class StatusChange:
    """The merge patch for ``status`` (None: already what it should be) and the events."""

    patch: JSON | None
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Desired:
    # Steps run one after another; the writes inside a step are independent and go out
    # together (a ClusterIP Service apply alone can take longer than a Deployment's: the API
    # server allocates its IP one at a time, bench/apiserver_write_probe.py).
    steps: tuple[tuple[Write, ...], ...]
    status: StatusChange  # if every write succeeds
    # The status when a write failed, given the error (pure; bound to what decide saw).
    on_write_failure: Callable[[str], StatusChange]
    # Reconcile again after this many seconds even if no watch event comes: the status excuses
    # something only until then (a claim's time to bind, status.recheck_after).
    recheck_after: float | None = None

    @property
    def writes(self) -> tuple[Write, ...]:
        return tuple(w for step in self.steps for w in step)


def status_patch(current: Mapping[str, Any], new: JSON) -> JSON | None:
    """The merge patch that turns ``current`` into ``new``; None when they are equal.
    Keys ``new`` no longer has are removed (merge-patch null)."""
    if _prune_none(new) == current:
        return None
    return new | {k: None for k in current if k not in new}


def _prune_none(value: Any) -> Any:
    """What the API server stores for a merge patch: keys with null values are absent."""
    if isinstance(value, dict):
        return {k: _prune_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_none(v) for v in value]
    return value
