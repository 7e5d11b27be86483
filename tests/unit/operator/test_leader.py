"""The pure half of leader election: given a Lease and the time, take it, renew it or wait."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from gptoss_operator import leader
from gptoss_operator.leader import Action, LeaderElector, decide, lease_body

ME = "operator-a_1111"
OTHER = "operator-b_2222"


def lease(holder: str, duration: int = 15, transitions: int = 3, version: str = "7") -> dict[str, Any]:
    return {
        "metadata": {"name": "gptoss-operator", "namespace": "ops", "resourceVersion": version},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "leaseTransitions": transitions,
            "acquireTime": "2026-11-28T08:00:00.000000Z",
            "renewTime": "2026-11-28T08:00:10.000000Z",
        },
    }


def test_no_lease_is_created() -> None:
    assert decide(None, me=ME, observed_at=0, now=100, lease_duration=15) is Action.CREATE


def test_our_lease_is_renewed_however_old_it_looks() -> None:
    assert decide(lease(ME), me=ME, observed_at=0, now=1000, lease_duration=15) is Action.RENEW


def test_a_live_lease_of_another_is_left_alone() -> None:
    assert decide(lease(OTHER), me=ME, observed_at=100, now=114.9, lease_duration=15) is Action.WAIT


def test_a_lease_unchanged_for_its_duration_is_taken_over() -> None:
    assert decide(lease(OTHER), me=ME, observed_at=100, now=115, lease_duration=15) is Action.ACQUIRE


def test_the_longer_of_the_two_durations_counts() -> None:
    # The holder announced 60 s: a candidate configured for 15 s must still wait 60 s.
    assert decide(lease(OTHER, duration=60), me=ME, observed_at=0, now=30, lease_duration=15) is Action.WAIT
    assert (
        decide(lease(OTHER, duration=60), me=ME, observed_at=0, now=60, lease_duration=15) is Action.ACQUIRE
    )


def test_a_released_lease_is_taken_at_once() -> None:
    assert decide(lease(""), me=ME, observed_at=100, now=100, lease_duration=15) is Action.ACQUIRE


# From a dead holder (SIGKILL), or from a released Lease (empty holder: a clean shutdown, a
# rolling update): both make a new leader, and client-go counts both.
@pytest.mark.parametrize(("previous", "before"), [(OTHER, 3), ("", 1)], ids=["taken-over", "released"])
def test_taking_over_counts_a_transition_and_keeps_the_resource_version(previous: str, before: int) -> None:
    now = dt.datetime(2026, 11, 28, 9, 0, 0, 123456, tzinfo=dt.UTC)
    body = lease_body(
        lease(previous, transitions=before),
        name="gptoss-operator",
        namespace="ops",
        me=ME,
        action=Action.ACQUIRE,
        lease_duration=15,
        wall_now=now,
    )
    assert body["metadata"]["resourceVersion"] == "7"  # the PUT fails with 409 if it changed
    assert body["spec"] == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "leaseTransitions": before + 1,
        "acquireTime": "2026-11-28T09:00:00.123456Z",
        "renewTime": "2026-11-28T09:00:00.123456Z",
    }


def test_renewing_moves_only_the_renew_time() -> None:
    now = dt.datetime(2026, 11, 28, 9, 0, 5, tzinfo=dt.UTC)
    body = lease_body(
        lease(ME),
        name="gptoss-operator",
        namespace="ops",
        me=ME,
        action=Action.RENEW,
        lease_duration=15,
        wall_now=now,
    )
    assert body["spec"]["acquireTime"] == "2026-11-28T08:00:00.000000Z"
    assert body["spec"]["leaseTransitions"] == 3
    assert body["spec"]["renewTime"] == "2026-11-28T09:00:05.000000Z"


def test_a_new_lease_starts_at_zero_transitions() -> None:
    now = dt.datetime(2026, 11, 28, 9, 0, 5, tzinfo=dt.UTC)
    body = lease_body(
        None, name="l", namespace="ops", me=ME, action=Action.CREATE, lease_duration=15, wall_now=now
    )
    assert "resourceVersion" not in body["metadata"]
    assert body["spec"]["leaseTransitions"] == 0
    assert body["apiVersion"] == "coordination.k8s.io/v1"


def test_timings_must_leave_the_holder_time_to_give_up_first() -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaderElector(None, name="l", namespace="ops", identity=ME, renew_deadline=15)  # type: ignore[arg-type]


def test_a_restarted_process_of_the_same_pod_is_a_new_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    # A kubelet restart keeps the pod's name and uid: an identity made of them alone would let
    # the restarted container find the Lease naming "itself" and renew it without waiting.
    monkeypatch.setenv("POD_NAME", "gptoss-operator-7d9f-abcde")
    monkeypatch.setenv("POD_UID", "3f1c2b4a-0000-4000-8000-000000000001")
    first, second = leader.default_identity(), leader.default_identity()
    assert first != second
    assert first.startswith("gptoss-operator-7d9f-abcde_")
    assert second.startswith("gptoss-operator-7d9f-abcde_")
