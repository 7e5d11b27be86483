"""decide(): every branch of one ModelDeployment's reconcile, without a cluster.

Each test builds a ``Gathered`` (what the store would hold) and checks the ``Desired``: which
children are applied or deleted, in which steps, the rollout, the weight cache's step, and
the status and events.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from gptoss_operator.api.v1alpha1 import ModelDeployment
from gptoss_operator.controller.desired import Apply, Delete, Desired
from gptoss_operator.controller.modeldeployment.decide import decide, predicted_after_apply
from gptoss_operator.controller.modeldeployment.gathered import Gathered
from gptoss_operator.observed import (
    ChildState,
    ClaimState,
    DeploymentState,
    JobState,
    NodeState,
    PodState,
    gpus_in_use,
    summarize_child,
)
from gptoss_operator.settings import OperatorSettings
from gptoss_operator.status import Event

NOW = "2026-01-01T00:00:00Z"
SETTINGS = OperatorSettings()
H100_NODE = NodeState(
    name="h100-0",
    labels={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    gpus={"nvidia.com/gpu": 8},
    schedulable=True,
    ready=True,
)


def body(name: str = "m", status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "llm", "uid": "u-1", "generation": 1},
        "spec": {"model": "gpt-oss-120b", "gpu": {"type": "H100-80GB"}, **spec},
    }
    if status is not None:
        out["status"] = status
    return out


def gathered(
    raw: dict[str, Any],
    children: Mapping[str, ChildState] | None = None,
    nodes: tuple[NodeState, ...] = (H100_NODE,),
    gpu_pods: tuple[PodState, ...] = (),
) -> Gathered:
    try:
        model: ModelDeployment | None = ModelDeployment.model_validate(raw)
        error = None
    except Exception as e:  # pydantic's ValidationError
        model, error = None, str(e)
    return Gathered(
        key=("llm", raw["metadata"]["name"]),
        body=raw,
        model=model,
        spec_error=error,
        children=children or {},
        server_pods=(),
        nodes=nodes,
        gpus_in_use=gpus_in_use(gpu_pods),
    )


def applied(d: Desired) -> list[str]:
    return [w.manifest["kind"] for w in d.writes if isinstance(w, Apply)]


def deleted(d: Desired) -> list[str]:
    return [w.kind for w in d.writes if isinstance(w, Delete)]


def converged(d: Desired) -> dict[str, ChildState]:
    """The children as the API server would hold them after ``d``'s writes."""
    return {w.manifest["kind"]: summarize_child(w.manifest) for w in d.writes if isinstance(w, Apply)}


def rollout(d: Desired) -> str:
    assert d.status.patch is not None
    strategy: str = d.status.patch["rolloutStrategy"]
    return strategy


def conditions(d: Desired) -> dict[str, tuple[str, str]]:
    assert d.status.patch is not None
    return {c["type"]: (c["status"], c["reason"]) for c in d.status.patch["conditions"]}


def test_a_new_object_gets_its_service_and_deployment_in_one_step() -> None:
    d = decide(gathered(body()), SETTINGS, NOW)
    assert len(d.steps) == 1
    assert sorted(applied(d)) == ["Deployment", "Service"]
    assert conditions(d)["Planned"] == ("True", "Planned")
    assert conditions(d)["Progressing"] == ("True", "RollingOut")
    assert d.status.patch is not None
    assert d.status.patch["phase"] == "Pending"
    assert d.status.patch["plan"]["tensorParallelSize"] == 2
    assert d.status.events == ()  # the happy path posts no event (docs/operator.md, Events)


def test_nothing_to_write_once_converged() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    assert first.status.patch is not None
    status = {k: v for k, v in first.status.patch.items() if v is not None}
    again = decide(gathered(body(status=status), children=converged(first)), SETTINGS, NOW)
    assert again.writes == ()
    assert again.status.patch is None
    assert again.status.events == ()


def test_an_invalid_spec_writes_only_status_and_leaves_children_alone() -> None:
    existing = {"Deployment": DeploymentState("Deployment", "m", "h", replicas=1, ready_replicas=1)}
    d = decide(gathered(body(replicas=-1), children=existing), SETTINGS, NOW)
    assert d.writes == ()
    assert conditions(d)["Planned"] == ("False", "InvalidSpec")
    assert d.status.patch is not None
    assert d.status.patch["readyReplicas"] == 1  # what runs is still reported


def test_a_refused_plan_writes_only_status() -> None:
    d = decide(gathered(body(gpu={"type": "T4"})), SETTINGS, NOW)
    assert d.writes == ()
    assert conditions(d)["Planned"][0] == "False"
    assert conditions(d)["Degraded"][0] == "True"


def test_cache_claim_and_job_first_then_the_deployment_once_downloaded() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {"size": "50Gi"}})
    first = decide(gathered(raw), SETTINGS, NOW)
    assert applied(first) == ["PersistentVolumeClaim", "Job", "Service"]
    assert first.steps[0] == tuple(w for w in first.writes if isinstance(w, Apply))[:2]
    assert conditions(first)["WeightsReady"] == ("False", "Downloading")
    children = converged(first)
    job = children["Job"]
    children["Job"] = JobState("Job", job.name, job.config_hash, succeeded=True)
    second = decide(gathered(raw, children=children), SETTINGS, NOW)
    assert applied(second) == ["Deployment"]
    assert conditions(second)["WeightsReady"] == ("True", "Downloaded")


def test_a_failed_download_is_degraded_and_starts_nothing() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    children = converged(decide(gathered(raw), SETTINGS, NOW))
    job = children["Job"]
    children["Job"] = JobState("Job", job.name, job.config_hash, failed=True, message="BackoffLimitExceeded")
    d = decide(gathered(raw, children=children), SETTINGS, NOW)
    assert d.writes == ()
    assert conditions(d)["Degraded"] == ("True", "DownloadFailed")


def test_a_new_revision_deletes_the_immutable_job_before_recreating_it() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    children = converged(decide(gathered(raw), SETTINGS, NOW))
    raw["spec"]["source"]["huggingface"] = {"revision": "abc123"}
    d = decide(gathered(raw, children=children), SETTINGS, NOW)
    assert deleted(d) == ["Job"]
    assert "Job" not in applied(d)
    assert conditions(d)["WeightsReady"] == ("False", "Downloading")


def test_dropping_the_cache_deletes_claim_and_job() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    children = converged(decide(gathered(raw), SETTINGS, NOW))
    del raw["spec"]["source"]
    d = decide(gathered(raw, children=children), SETTINGS, NOW)
    assert sorted(deleted(d)) == ["Job", "PersistentVolumeClaim"]
    assert "Deployment" in applied(d)


def test_a_disruption_budget_comes_and_goes_with_replicas() -> None:
    d = decide(gathered(body(replicas=2)), SETTINGS, NOW)
    assert "PodDisruptionBudget" in applied(d)
    back = decide(gathered(body(replicas=1), children=converged(d)), SETTINGS, NOW)
    assert deleted(back) == ["PodDisruptionBudget"]


@pytest.mark.parametrize(("free_gpus", "expected"), [(8, "Surge"), (0, "Recreate")])
def test_auto_rollout_of_a_running_model_is_chosen_from_spare_gpus(free_gpus: int, expected: str) -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    running = converged(first)
    busy = PodState("other", "p", "h100-0", "Running", {"nvidia.com/gpu": 8 - free_gpus}, None, False)
    d = decide(
        gathered(body(serving={"maxModelLen": 8192}), children=running, gpu_pods=(busy,)), SETTINGS, NOW
    )
    assert applied(d) == ["Deployment"]
    assert rollout(d) == expected
    assert [e.reason for e in d.status.events if e.reason == "RolloutStrategy"] == ["RolloutStrategy"]


def test_auto_keeps_the_strategy_between_rollouts() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    full = PodState("other", "p", "h100-0", "Running", {"nvidia.com/gpu": 8}, None, False)
    d = decide(gathered(body(replicas=3), children=converged(first), gpu_pods=(full,)), SETTINGS, NOW)
    assert rollout(d) == rollout(first) == "Surge"
    assert not [e for e in d.status.events if e.reason == "RolloutStrategy"]


def test_prediction_of_an_applied_deployment_keeps_status_and_bumps_generation() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    manifest = next(
        w.manifest for w in first.writes if isinstance(w, Apply) and w.manifest["kind"] == "Deployment"
    )
    have = DeploymentState("Deployment", "m", "old", generation=4, observed_generation=4, ready_replicas=1)
    after = predicted_after_apply(have, manifest)
    assert isinstance(after, DeploymentState)
    assert (after.generation, after.observed_generation, after.ready_replicas) == (5, 4, 1)
    assert after.config_hash == manifest["metadata"]["annotations"]["gptoss.dev/config-hash"]
    fresh = predicted_after_apply(None, manifest)
    assert isinstance(fresh, DeploymentState)
    assert (fresh.generation, fresh.observed_generation) == (1, 0)  # nothing observed yet


# A download pod the scheduler refuses because nothing provisions its claim (no StorageClass).
UNBOUND = (
    "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 "
    "nodes are available: 3 Preemption is not helpful for scheduling."
)


def download_pod(unschedulable: str | None = None, waiting: str | None = None) -> PodState:
    return PodState(
        namespace="llm",
        name="m-download-x1",
        node=None if unschedulable else "n1",
        phase="Pending",
        gpus={},
        instance="m",
        managed=True,
        component="download",
        unschedulable=unschedulable,
        waiting_reason=waiting,
    )


def test_a_cache_that_can_never_fill_is_degraded_with_the_schedulers_reason() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    children = converged(decide(gathered(raw), SETTINGS, NOW))
    claim = children["PersistentVolumeClaim"]
    assert isinstance(claim, ClaimState)
    children["PersistentVolumeClaim"] = ClaimState(claim.kind, claim.name, claim.config_hash, phase="Pending")
    g = dataclasses.replace(gathered(raw, children=children), download_pods=(download_pod(UNBOUND),))
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["WeightsReady"] == ("False", "DownloadUnschedulable")
    assert conditions(d)["Degraded"] == ("True", "DownloadUnschedulable")
    assert d.status.patch is not None
    assert d.status.patch["phase"] == "Degraded"
    assert d.status.patch["reason"] == "DownloadUnschedulable"
    message = next(c["message"] for c in d.status.patch["conditions"] if c["type"] == "Degraded")
    assert "pod has unbound immediate PersistentVolumeClaims" in message
    assert "PVC m-weights is Pending with no storageClassName" in message


def created_ago(age: int | None) -> str | None:
    """A creationTimestamp ``age`` seconds before NOW."""
    if age is None:
        return None
    return (dt.datetime.fromisoformat(NOW) - dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cache_claim(
    children: Mapping[str, ChildState], age: int | None, provisioner: str | None, phase: str = "Pending"
) -> ClaimState:
    """The cache's claim as the API server holds it: in ``phase`` (Pending unless said), in the
    default class, created ``age`` seconds before NOW (None: unknown), handed to ``provisioner``
    or to none."""
    claim = children["PersistentVolumeClaim"]
    return ClaimState(
        claim.kind,
        claim.name,
        claim.config_hash,
        phase=phase,
        storage_class="standard",
        created=created_ago(age),
        provisioner=provisioner,
    )


def cached_with_claim(
    age: int | None, provisioner: str | None, pod: PodState, phase: str = "Pending"
) -> tuple[dict[str, Any], Gathered]:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    children = converged(decide(gathered(raw), SETTINGS, NOW))
    children["PersistentVolumeClaim"] = cache_claim(children, age, provisioner, phase)
    return raw, dataclasses.replace(gathered(raw, children=children), download_pods=(pod,))


@pytest.mark.parametrize(
    ("age", "provisioner", "left"),
    [(5, "kubernetes.io/host-path", 115), (119, "ebs.csi.aws.com", 1), (3, None, 7)],
    ids=["provisioning", "provisioning-slowly", "first-look"],
)
def test_a_download_pod_waiting_for_its_claim_to_be_provisioned_is_just_downloading(
    age: int, provisioner: str | None, left: int
) -> None:
    # The scheduler's first try often comes before the provisioner's volume: not a problem.
    _, g = cached_with_claim(age, provisioner, download_pod(UNBOUND))
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["WeightsReady"] == ("False", "Downloading")
    assert conditions(d)["Degraded"] == ("False", "AsExpected")
    assert d.status.patch is not None
    assert (d.status.patch["phase"], d.status.patch["reason"]) == ("Downloading", "Downloading")
    assert d.status.events == ()
    # Looked at again once the claim's time is up, even if nothing else happens.
    assert d.recheck_after == left + 1


@pytest.mark.parametrize(
    ("age", "provisioner", "why"),
    [
        (120, "kubernetes.io/host-path", "provisioner kubernetes.io/host-path has not provided a volume"),
        (10, None, "no provisioner was asked for a volume: does the class exist?"),
        (None, "kubernetes.io/host-path", "provisioner kubernetes.io/host-path has not provided a volume"),
    ],
    ids=["provisioner-silent", "no-provisioner", "age-unknown"],
)
def test_a_claim_that_does_not_bind_in_its_time_is_a_stuck_download_naming_it(
    age: int | None, provisioner: str | None, why: str
) -> None:
    _, g = cached_with_claim(age, provisioner, download_pod(UNBOUND))
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["WeightsReady"] == ("False", "DownloadUnschedulable")
    assert conditions(d)["Degraded"] == ("True", "DownloadUnschedulable")
    assert d.recheck_after is None
    assert [(e.type, e.reason) for e in d.status.events] == [("Warning", "DownloadUnschedulable")]
    assert f"PVC m-weights is Pending (storageClassName standard; {why})" in d.status.events[0].message


@pytest.mark.parametrize("phase", ["Bound", ""], ids=["bound", "not-seen-yet"])
def test_the_schedulers_last_word_on_a_claim_that_has_bound_is_not_a_stuck_download(phase: str) -> None:
    # The pod's condition is from the scheduler's try before the volume came; it tries again
    # once the claim binds (the local cluster's provisioner binds within a second).
    _, g = cached_with_claim(600, "kubernetes.io/host-path", download_pod(UNBOUND), phase)
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["WeightsReady"] == ("False", "Downloading")
    assert conditions(d)["Degraded"] == ("False", "AsExpected")
    assert d.status.events == ()
    assert d.recheck_after is None


# The scheduler's answer when it tries the download pod before its informer has the claim the
# operator applied just before the Job (seen once in CI on a cluster just started).
NOT_SEEN = '0/17 nodes are available: persistentvolumeclaim "m-weights" not found. not found'


@pytest.mark.parametrize("phase", ["Pending", "Bound"])
def test_a_download_pod_tried_before_the_scheduler_saw_its_claim_is_just_downloading(phase: str) -> None:
    _, g = cached_with_claim(1, "kubernetes.io/host-path", download_pod(NOT_SEEN), phase)
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["WeightsReady"] == ("False", "Downloading")
    assert conditions(d)["Degraded"] == ("False", "AsExpected")
    assert d.status.events == ()
    # A Pending claim is still looked at once its time to bind is up.
    assert d.recheck_after == (120 if phase == "Pending" else None)


def test_a_claim_never_seen_by_the_scheduler_is_reported_once_its_time_is_up() -> None:
    _, g = cached_with_claim(130, "kubernetes.io/host-path", download_pod(NOT_SEEN))
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["Degraded"] == ("True", "DownloadUnschedulable")
    assert 'persistentvolumeclaim "m-weights" not found' in d.status.events[0].message


def test_a_young_claim_does_not_excuse_any_other_scheduling_failure() -> None:
    _, g = cached_with_claim(
        5, "kubernetes.io/host-path", download_pod("0/3 nodes are available: 3 node(s) had untolerated taint")
    )
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["Degraded"] == ("True", "DownloadUnschedulable")
    assert d.recheck_after is None


def test_the_cached_happy_path_posts_only_downloaded() -> None:
    # What a user saw on a healthy install: Downloading, a DownloadUnschedulable Warning,
    # AsExpected, Downloaded, because the scheduler's first try came before the volume.
    raw, g = cached_with_claim(1, "kubernetes.io/host-path", download_pod(UNBOUND))
    events: list[Event] = []
    first = decide(g, SETTINGS, NOW)
    events += first.status.events
    store = {k: v for k, v in (first.status.patch or {}).items() if v is not None}
    children = dict(g.children)
    children["PersistentVolumeClaim"] = cache_claim(children, 2, None, "Bound")
    raw = raw | {"status": store}
    running = decide(
        dataclasses.replace(g, body=raw, children=children, download_pods=(download_pod(),)), SETTINGS, NOW
    )
    events += running.status.events
    if running.status.patch is not None:
        raw = raw | {"status": {k: v for k, v in running.status.patch.items() if v is not None}}
    job = children["Job"]
    assert isinstance(job, JobState)
    children["Job"] = dataclasses.replace(job, succeeded=True)
    done = decide(dataclasses.replace(g, body=raw, children=children, download_pods=()), SETTINGS, NOW)
    events += done.status.events
    assert conditions(done)["WeightsReady"] == ("True", "Downloaded")
    assert [(e.type, e.reason) for e in events] == [("Normal", "Downloaded")]


def test_a_download_pod_that_cannot_pull_its_image_is_degraded() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    children = converged(decide(gathered(raw), SETTINGS, NOW))
    g = dataclasses.replace(
        gathered(raw, children=children), download_pods=(download_pod(waiting="ImagePullBackOff"),)
    )
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["Degraded"] == ("True", "ImagePullBackOff")


def test_a_running_download_is_just_downloading() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    children = converged(decide(gathered(raw), SETTINGS, NOW))
    g = dataclasses.replace(gathered(raw, children=children), download_pods=(download_pod(),))
    d = decide(g, SETTINGS, NOW)
    assert conditions(d)["WeightsReady"] == ("False", "Downloading")
    assert conditions(d)["Degraded"] == ("False", "AsExpected")
    assert d.status.patch is not None
    assert d.status.patch["phase"] == "Downloading"


@pytest.mark.parametrize(
    ("cache", "mode"), [({}, "ReadWriteOnce"), ({"accessMode": "ReadWriteMany"}, "ReadWriteMany")]
)
def test_the_cache_claims_access_mode_comes_from_the_spec(cache: dict[str, Any], mode: str) -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": cache})
    d = decide(gathered(raw), SETTINGS, NOW)
    claim = next(
        w.manifest for w in d.writes if isinstance(w, Apply) and w.manifest["kind"] == "PersistentVolumeClaim"
    )
    assert claim["spec"]["accessModes"] == [mode]


def test_a_refused_edit_of_a_serving_model_keeps_the_last_good_plan() -> None:
    # 120b runs on 2 x H100; an edit to gpu.count 1 is refused, the old Deployment serves 1/1.
    first = decide(gathered(body()), SETTINGS, NOW)
    assert first.status.patch is not None
    status = {k: v for k, v in first.status.patch.items() if v is not None}
    children = converged(first)
    deployment = children["Deployment"]
    assert isinstance(deployment, DeploymentState)
    serving = dataclasses.replace(
        deployment, replicas=1, ready_replicas=1, available_replicas=1, updated_replicas=1
    )
    raw = body(status=status, gpu={"type": "H100-80GB", "count": 1})
    raw["metadata"]["generation"] = 2
    d = decide(gathered(raw, children={**children, "Deployment": serving}), SETTINGS, NOW)
    assert d.writes == ()
    assert conditions(d)["Planned"] == ("False", "InsufficientGPUMemory")
    assert d.status.patch is not None
    assert d.status.patch["phase"] == "Degraded"
    assert d.status.patch["reason"] == "InsufficientGPUMemory"
    assert d.status.patch["plan"]["gpusPerReplica"] == 2  # the GPUs/TP columns show what serves
    assert d.status.patch["plan"]["tensorParallelSize"] == 2
    assert d.status.patch["readyText"] == "1/1"
    assert conditions(d)["Ready"] == ("True", "Serving")
    # (the stored status said Starting, so Serving is news; the refusal is one warning)
    assert [(e.type, e.reason) for e in d.status.events if e.type == "Warning"] == [
        ("Warning", "InsufficientGPUMemory")
    ]


def test_a_refused_spec_with_nothing_running_is_failed_without_a_plan() -> None:
    d = decide(
        gathered(body(gpu={"type": "H100-80GB", "count": 1}, serving={"maxModelLen": 8192})), SETTINGS, NOW
    )
    assert d.status.patch is not None
    assert d.status.patch["phase"] == "Failed"
    assert d.status.patch["plan"] is None
    assert [(e.type, e.reason) for e in d.status.events] == [("Warning", "InsufficientGPUMemory")]


def test_a_claim_stored_without_a_class_is_degraded_before_any_pod_exists() -> None:
    raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
    first = decide(gathered(raw), SETTINGS, NOW)
    # Just applied: the claim is the operator's prediction, not a stuck claim.
    assert conditions(first)["Degraded"] == ("False", "AsExpected")
    children = converged(first)
    claim = children["PersistentVolumeClaim"]
    children["PersistentVolumeClaim"] = ClaimState(claim.kind, claim.name, claim.config_hash, phase="Pending")
    d = decide(gathered(raw, children=children), SETTINGS, NOW)
    assert conditions(d)["Degraded"] == ("True", "NoStorageClass")
    assert d.status.patch is not None
    assert d.status.patch["phase"] == "Degraded"
    # Admission filled in the default class: waiting for it to provision is just downloading.
    children["PersistentVolumeClaim"] = ClaimState(
        claim.kind, claim.name, claim.config_hash, phase="Pending", storage_class="standard"
    )
    assert conditions(decide(gathered(raw, children=children), SETTINGS, NOW))["Degraded"] == (
        "False",
        "AsExpected",
    )
