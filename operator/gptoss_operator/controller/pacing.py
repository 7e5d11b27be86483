"""Status pacing: hold a status write that only reports progress, so one write says where it ends.

A new ModelDeployment goes Pending -> Starting -> Ready within seconds when its GPUs are free,
and every step was a status PATCH: an API write (and a watch event to every watcher) for a
state nobody acts on, soon replaced. Like controller-runtime's ``Result{RequeueAfter: ...}``,
a reconcile whose new status only says "on its way" holds the write and asks to be run again
when the hold ends; whatever the object's state is by then is what gets written.

- Held: a status that is in progress and fine (``Planned`` True, ``Degraded`` not True, and
  ``Progressing`` True, ``Ready`` ``Starting`` or the weights ``Downloading``), with no event
  to record.
- Written at once: everything else, so a problem (Degraded, a refusal, a failed apply), a
  settled state (Ready, Complete, ScaledToZero) and any event are never delayed; a held write
  is dropped when a settled state replaces it.
- Never held longer than ``window`` seconds from the first reconcile that held it: then the
  latest state is written even if it is still in progress (and the next progress-only change
  starts a new hold). So a change is late by at most ``window``, and the last state always
  lands (tests/unit/operator/test_pacing.py).

Pure: the caller passes the clock's reading and requeues the object after the returned delay.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator.api.v1alpha1 import (
    CONDITION_DEGRADED,
    CONDITION_PLANNED,
    CONDITION_PROGRESSING,
    CONDITION_READY,
    CONDITION_WEIGHTS_READY,
)
from gptoss_operator.controller.desired import StatusChange


def in_progress(status: Mapping[str, Any]) -> bool:
    """The status says "on its way, nothing wrong": the next one will replace it on its own."""
    conditions: Sequence[Mapping[str, Any]] = status.get("conditions") or ()
    by_type = {c.get("type"): c for c in conditions}

    def has(type_: str, status_: str | None = None, reason: str | None = None) -> bool:
        c = by_type.get(type_)
        return (
            c is not None
            and (status_ is None or c.get("status") == status_)
            and (reason is None or c.get("reason") == reason)
        )

    if not has(CONDITION_PLANNED, "True") or not has(CONDITION_DEGRADED, "False"):
        return False
    return (
        has(CONDITION_PROGRESSING, "True")
        or has(CONDITION_READY, reason="Starting")
        or has(CONDITION_WEIGHTS_READY, reason="Downloading")
    )


def hold_seconds(change: StatusChange, held_since: float | None, now: float, window: float) -> float | None:
    """How long to hold ``change``'s status write, or None to write it now.

    ``held_since``: when a reconcile of this object first held a write it has not made yet.
    """
    if change.patch is None or change.events or window <= 0 or not in_progress(change.patch):
        return None
    waited = 0.0 if held_since is None else now - held_since
    return window - waited if waited < window else None


@dataclass
class StatusPacer:
    """Per-object hold state for :func:`hold_seconds` (one per controller)."""

    window: float
    clock: Callable[[], float]
    _held_since: dict[Hashable, float] = field(default_factory=dict)

    def hold(self, key: Hashable, change: StatusChange) -> float | None:
        """Seconds to hold ``change`` (requeue then), or None to write it now."""
        now = self.clock()
        delay = hold_seconds(change, self._held_since.get(key), now, self.window)
        if delay is None:
            self._held_since.pop(key, None)
        else:
            self._held_since.setdefault(key, now)
        return delay

    def forget(self, key: Hashable) -> None:
        self._held_since.pop(key, None)

    def __len__(self) -> int:
        return len(self._held_since)
