"""Status pacing (controller/pacing.py): progress-only status writes are held, nothing is lost."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

import pytest

from gptoss_operator.controller.desired import StatusChange
from gptoss_operator.controller.pacing import StatusPacer, hold_seconds, in_progress
from gptoss_operator.controller.reconcile import reconcile
from gptoss_operator.controller.store import Store
from gptoss_operator.controller.write import now
from gptoss_operator.observed import ClaimState, DeploymentState, PodState
from gptoss_operator.settings import OperatorSettings
from gptoss_operator.status import CLAIM_PROVISIONING_SECONDS, UNBOUND_CLAIM, Event
from tests.support.fake_kube import FakeKubeAPI

SETTINGS = OperatorSettings()
KEY = ("llm", "m")
WINDOW = 10.0
UNBOUND = f"0/3 nodes are available: {UNBOUND_CLAIM}. preemption: not helpful"


def cond(type_: str, status: str, reason: str) -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": ""}


def status(
    *, planned: str = "True", progressing: str = "True", ready: str = "Starting", degraded: str = "False"
) -> dict[str, Any]:
    return {
        "conditions": [
            cond("Planned", planned, "Planned"),
            cond("WeightsReady", "True", "DownloadAtStart"),
            cond("Progressing", progressing, "RollingOut" if progressing == "True" else "Complete"),
            cond("Ready", "True" if ready == "Serving" else "False", ready),
            cond("Degraded", degraded, "AsExpected" if degraded == "False" else "CrashLoopBackOff"),
        ]
    }


STARTING = status()
READY = status(progressing="False", ready="Serving")
DEGRADED = status(progressing="False", degraded="True")


class TestInProgress:
    def test_coming_up_with_nothing_wrong_is_in_progress(self) -> None:
        assert in_progress(STARTING)
        assert in_progress(status(progressing="False"))  # Ready Starting alone
        assert in_progress(status(progressing="False", ready="ScaledToZero")) is False

    @pytest.mark.parametrize(
        "settled",
        [READY, DEGRADED, status(planned="False"), status(degraded="True"), {}],
        ids=["ready", "degraded", "refused", "degraded-while-rolling", "no-conditions"],
    )
    def test_settled_or_wrong_is_not(self, settled: dict[str, Any]) -> None:
        assert not in_progress(settled)


class TestHoldSeconds:
    def test_the_first_progress_write_is_held_for_the_window(self) -> None:
        assert hold_seconds(StatusChange(STARTING, ()), None, 100.0, WINDOW) == WINDOW

    def test_the_hold_never_extends_past_the_window_from_the_first_hold(self) -> None:
        assert hold_seconds(StatusChange(STARTING, ()), 100.0, 104.0, WINDOW) == pytest.approx(6.0)
        assert hold_seconds(StatusChange(STARTING, ()), 100.0, 110.0, WINDOW) is None
        assert hold_seconds(StatusChange(STARTING, ()), 100.0, 250.0, WINDOW) is None

    @pytest.mark.parametrize(
        "change",
        [
            StatusChange(READY, ()),
            StatusChange(DEGRADED, (Event("Warning", "CrashLoopBackOff", "x"),)),
            StatusChange(DEGRADED, ()),
            StatusChange(STARTING, (Event("Normal", "RolloutStrategy", "Auto chose Surge"),)),
            StatusChange(None, ()),
        ],
        ids=["ready", "degraded-warning", "degraded", "progress-with-an-event", "nothing"],
    )
    def test_written_at_once(self, change: StatusChange) -> None:
        assert hold_seconds(change, 100.0, 101.0, WINDOW) is None
        assert hold_seconds(change, None, 101.0, WINDOW) is None

    def test_window_zero_writes_everything_at_once(self) -> None:
        assert hold_seconds(StatusChange(STARTING, ()), None, 100.0, 0.0) is None


class TestPacer:
    def test_a_write_ends_the_hold_and_the_next_progress_starts_a_new_one(self) -> None:
        now = [100.0]
        pacer = StatusPacer(WINDOW, lambda: now[0])
        assert pacer.hold(KEY, StatusChange(STARTING, ())) == WINDOW
        now[0] = 107.0
        assert pacer.hold(KEY, StatusChange(STARTING, ())) == pytest.approx(3.0)
        now[0] = 110.0
        assert pacer.hold(KEY, StatusChange(STARTING, ())) is None  # written now
        assert len(pacer) == 0
        now[0] = 111.0
        assert pacer.hold(KEY, StatusChange(STARTING, ())) == WINDOW

    def test_already_stored_drops_the_hold(self) -> None:
        pacer = StatusPacer(WINDOW, lambda: 100.0)
        pacer.hold(KEY, StatusChange(STARTING, ()))
        assert pacer.hold(KEY, StatusChange(None, ())) is None
        assert len(pacer) == 0


@pytest.mark.parametrize("seed", range(20))
def test_no_state_is_lost_and_none_is_late_by_more_than_the_window(seed: int) -> None:
    """The controller's loop, simulated: a reconcile on every change and at every requeue.

    Every decided state is written, or overtaken by a later one, within the window; problems
    and Ready at once; and the last state always lands."""
    rng = random.Random(seed)
    pacer_now = [0.0]
    pacer = StatusPacer(WINDOW, lambda: pacer_now[0])
    choices = [STARTING, status(progressing="False"), READY, DEGRADED]
    t, changes = 0.0, []
    for _ in range(rng.randint(1, 12)):
        t += rng.choice([0.5, 2.0, 4.0, 9.0, 15.0, 40.0])
        changes.append((t, rng.choice(choices)))
    stored: dict[str, Any] | None = None
    written: list[tuple[float, int]] = []  # (time, index of the change whose state was written)
    requeue: float | None = None
    current = -1
    events = sorted([(ct, "change", i) for i, (ct, _) in enumerate(changes)])
    while events or requeue is not None:
        if requeue is not None and (not events or requeue <= events[0][0]):
            at, requeue = requeue, None
        else:
            at, _, current = events.pop(0)
        pacer_now[0] = at
        wanted = changes[current][1]
        change = StatusChange(None if wanted == stored else wanted, ())
        hold = pacer.hold(KEY, change)
        if hold is None:
            if change.patch is not None:
                stored = change.patch
                written.append((at, current))
        elif requeue is None or at + hold < requeue:
            requeue = at + hold
    assert stored == changes[-1][1], "the last state did not land"
    for i, (at, state) in enumerate(changes):
        before = [j for w, j in written if w < at]
        if state == (changes[before[-1]][1] if before else None):
            continue  # already stored: nothing to write
        limit = WINDOW if in_progress(state) else 0.0
        if i + 1 < len(changes) and changes[i + 1][0] - at <= limit:
            continue  # overtaken within its limit by the next change, checked in turn
        shown = [w for w, j in written if j == i]
        assert shown, f"change {i} was never written"
        assert shown[0] - at <= limit + 1e-9, f"change {i} late by {shown[0] - at:.1f}s"


# ---------------------------------------------------------------- the whole reconcile


def md() -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "llm", "uid": "u-1", "generation": 1},
        "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}},
    }


def setup() -> tuple[FakeKubeAPI, Store, StatusPacer, list[float]]:
    api, store = FakeKubeAPI(), Store()
    api.put(md())
    store.model_deployments[KEY] = md()
    clock = [1000.0]
    return api, store, StatusPacer(WINDOW, lambda: clock[0]), clock


def deployment_up(store: Store, ready: int) -> None:
    have = store.children[KEY]["Deployment"]
    assert isinstance(have, DeploymentState)
    store.set_child(
        KEY,
        dataclasses.replace(
            have, observed_generation=have.generation, replicas=1, updated_replicas=1,
            ready_replicas=ready, available_replicas=ready,
        ),
    )  # fmt: skip


def stored_status(api: FakeKubeAPI) -> dict[str, Any]:
    return dict(api.objects[("ModelDeployment", "llm", "m")].get("status") or {})


async def test_a_model_ready_within_the_window_costs_three_writes() -> None:
    api, store, pacer, clock = setup()
    hold = await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer)
    assert hold == WINDOW
    assert sorted(v + " " + k for v, k, _ in api.writes) == ["apply Deployment", "apply Service"]
    assert stored_status(api) == {}  # held: no status yet
    clock[0] += 3
    deployment_up(store, ready=1)
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer) is None
    assert stored_status(api)["phase"] == "Ready"
    clock[0] += WINDOW  # the requeue of the first hold: nothing left to write
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer) is None
    assert sorted(v + " " + k for v, k, _ in api.writes) == [
        "apply Deployment",
        "apply Service",
        "patch ModelDeployment/status",
    ]
    assert api.events == []  # the happy path posts no event


async def test_a_slow_model_shows_starting_after_the_window_then_ready_at_once() -> None:
    api, store, pacer, clock = setup()
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer) == WINDOW
    clock[0] += 4
    deployment_up(store, ready=0)
    hold = await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer)
    assert hold == pytest.approx(WINDOW - 4)  # the first hold's deadline, not a new one
    assert stored_status(api) == {}
    clock[0] += 6
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer) is None
    assert stored_status(api)["phase"] == "Pending"
    assert stored_status(api)["readyText"] == "0/1"
    clock[0] += 1
    deployment_up(store, ready=1)
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer) is None
    assert stored_status(api)["phase"] == "Ready"


async def test_a_problem_is_written_at_once_even_during_a_hold() -> None:
    api, store, pacer, clock = setup()
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer) == WINDOW
    clock[0] += 1
    deployment_up(store, ready=0)
    store.set_pod(
        PodState(
            namespace="llm", name="m-abc", node="n1", phase="Running", gpus={"nvidia.com/gpu": 1},
            instance="m", managed=True, component="server", waiting_reason="CrashLoopBackOff",
        )
    )  # fmt: skip
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS, pacer=pacer) is None
    assert stored_status(api)["phase"] == "Degraded"
    assert [(e["type"], e["reason"]) for e in api.events] == [("Warning", "CrashLoopBackOff")]


async def test_without_a_pacer_every_status_is_written_at_once() -> None:
    api, store, _, _ = setup()
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS) is None
    assert stored_status(api)["phase"] == "Pending"


async def test_pods_waiting_for_a_young_claim_are_looked_at_again_when_its_time_is_up() -> None:
    # Nothing else changes when a claim's time to bind runs out: the reconcile asks for a requeue.
    api, store, _, _ = setup()
    raw = md()
    raw["spec"]["source"] = {"persistentVolumeClaim": {"claimName": "w"}}
    api.put(raw)
    store.model_deployments[KEY] = raw
    store.set_pod(
        PodState(
            namespace="llm", name="m-abc", node=None, phase="Pending", gpus={"nvidia.com/gpu": 1},
            instance="m", managed=True, component="server", unschedulable=UNBOUND,
        )
    )  # fmt: skip
    claim = ClaimState("PersistentVolumeClaim", "w", None, phase="Pending", created=now(), provisioner="p")
    store.claims[("llm", "w")] = claim
    again = await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    assert again is not None
    assert CLAIM_PROVISIONING_SECONDS - 1 <= again <= CLAIM_PROVISIONING_SECONDS + 1
    assert stored_status(api)["reason"] == "VolumeNotBound"
    assert api.events == []
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=CLAIM_PROVISIONING_SECONDS)
    store.claims[("llm", "w")] = dataclasses.replace(claim, created=long_ago.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert await reconcile(KEY, api=api, store=store, settings=SETTINGS) is None
    assert (stored_status(api)["phase"], stored_status(api)["reason"]) == ("Pending", "VolumeNotBound")
    assert [(e["type"], e["reason"]) for e in api.events] == [("Warning", "VolumeNotBound")]
