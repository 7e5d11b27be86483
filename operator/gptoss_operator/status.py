"""ModelDeployment status from what the operator observed (pure: gather -> evaluate -> write).

Conditions are metav1-style; ``phase`` is derived from them, never stored independently.

| condition | True | False / Unknown |
| --- | --- | --- |
| Planned | Planned | InvalidSpec, UnsupportedGPU, InsufficientGPUMemory, ContextTooLong |
| WeightsReady | DownloadAtStart (no cache), Downloaded, ProvidedVolume | Downloading, DownloadFailed, DownloadUnschedulable, NoStorageClass, <pod waiting reason>, VolumeNotFound, VolumeNotBound, NotPlanned |
| Progressing | Creating, RollingOut | Complete, InsufficientGPU, ProgressDeadlineExceeded, WaitingForWeights, ... |
| Ready | Serving (also from the last good plan while a new spec is refused) | ScaledToZero, Starting, NotPlanned |
| Degraded | InvalidSpec, <refusal>, ApplyFailed, DownloadFailed, DownloadUnschedulable, NoStorageClass, VolumeNotFound, VolumeNotBound (past its time to bind, or Lost), FailedCreate, InsufficientGPU, Unschedulable, CrashLoopBackOff, ... | AsExpected |
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gptoss_operator.api.v1alpha1 import (
    CONDITION_DEGRADED,
    CONDITION_PLANNED,
    CONDITION_PROGRESSING,
    CONDITION_READY,
    CONDITION_WEIGHTS_READY,
    Plan,
    ready_text,
)
from gptoss_operator.observed import ClaimState, DeploymentState, JobState, PodState

JSON = dict[str, Any]
# NotCached .. Failed: Hugging Face, without or with the cache. The Volume* states: the user's
# own PVC (source.persistentVolumeClaim), by the claim's phase.
Weights = Literal[
    "NotCached", "Downloading", "Downloaded", "Failed", "VolumeNotFound", "VolumeNotBound", "ProvidedVolume"
]
CONDITION_ORDER = (
    CONDITION_PLANNED,
    CONDITION_WEIGHTS_READY,
    CONDITION_PROGRESSING,
    CONDITION_READY,
    CONDITION_DEGRADED,
)
# Pod waiting reasons that mean the container will not come up on its own.
FAILING_WAIT_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName"}
)
_INSUFFICIENT_GPU = re.compile(r"Insufficient (nvidia\.com/gpu|amd\.com/gpu)")
# The scheduler's whole answer for a pod with a claim of an Immediate-binding class that is not
# bound yet (ErrReasonUnboundImmediatePVC, kubernetes pkg/scheduler/framework/plugins/
# volumebinding): its PreFilter stops there, so this is the pod's only problem, and the pod is
# tried again when the claim binds.
UNBOUND_CLAIM = "pod has unbound immediate PersistentVolumeClaims"
# The same PreFilter's answer when its informer has not seen the claim yet (its lister's NotFound
# error): the operator applies the cache's claim just before the Job, and the scheduler can try
# the download pod before the claim reaches it. It tries the pod again when the claim arrives.
# A claim that really is missing is reported from the operator's own view (VolumeNotFound).
_CLAIM_NOT_SEEN = re.compile(r'persistentvolumeclaim "[^"]+" not found')
# How long a Pending claim may take to bind before the pods it holds back are reported (see
# ``claim_wait``). Handed to a provisioner, it is being made: a cloud disk takes seconds to a
# minute or two. Handed to none (the class does not exist, or no class and no matching
# PersistentVolume), it binds only to a PersistentVolume that is already there, which the PV
# controller does on its first look at the new claim: the short wait covers only that look.
CLAIM_PROVISIONING_SECONDS = 120
CLAIM_FIRST_LOOK_SECONDS = 10


@dataclass(frozen=True)
class Observation:
    """Everything status depends on, gathered by the controller."""

    name: str
    model: str
    generation: int
    desired_replicas: int
    selector: str
    endpoint: str
    spec_error: str | None = None
    plan: Plan | None = None
    refusal: tuple[str, str] | None = None  # (reason, message)
    gpu_summary: str = ""  # e.g. "2x H100-80GB"
    weights: Weights = "NotCached"
    job: JobState | None = None
    deployment: DeploymentState | None = None
    pods: Sequence[PodState] = field(default=())  # the vLLM server pods
    apply_error: str | None = None
    rollout: str | None = None
    # The plan the running Deployment was built from (the stored status.plan), kept while a new
    # spec is refused: the old pods keep serving and status says so.
    serving_plan: Plan | None = None
    download_pods: Sequence[PodState] = field(default=())  # the weight Job's pods
    claim: ClaimState | None = None  # the weight cache's PVC
    volume: ProvidedVolume | None = None  # source.persistentVolumeClaim, as found


@dataclass(frozen=True)
class ProvidedVolume:
    """The user's PVC named by source.persistentVolumeClaim, and what the operator found."""

    claim: str
    path: str
    phase: str | None  # Pending, Bound or Lost; None when no such claim exists in the namespace
    created: str | None = None  # the claim's creationTimestamp
    provisioner: str | None = None  # ClaimState.provisioner


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def _cond(type_: str, status: bool | None, reason: str, message: str) -> JSON:
    return {
        "type": type_,
        "status": "Unknown" if status is None else ("True" if status else "False"),
        "reason": reason,
        "message": message,
    }


def _planned(o: Observation) -> JSON:
    if o.spec_error:
        return _cond(CONDITION_PLANNED, False, "InvalidSpec", o.spec_error)
    if o.refusal:
        return _cond(CONDITION_PLANNED, False, o.refusal[0], o.refusal[1])
    assert o.plan is not None
    p = o.plan
    return _cond(
        CONDITION_PLANNED,
        True,
        "Planned",
        f"{o.gpu_summary} per replica, tensor parallel {p.tensor_parallel_size}, max model len "
        f"{p.max_model_len}, ~{p.kv_cache_tokens} KV-cache tokens",
    )


def claim_wait(phase: str | None, provisioner: str | None, created: str | None, now: str) -> float:
    """Seconds a Pending claim still has to bind before the pods it holds back are a problem;
    0 when that time is up or the claim is not Pending (a Lost claim does not come back; a
    claim whose creation time is unknown gets no time).

    The claim's state sets the time: ``CLAIM_PROVISIONING_SECONDS`` once the PV controller has
    handed it to a provisioner, else ``CLAIM_FIRST_LOOK_SECONDS``. A timer is still needed on
    top of the state: nothing in a claim tells a provisioner at work from one that is not
    running, and a claim created a moment ago has not been looked at yet.
    """
    if phase != "Pending" or not created:
        return 0.0
    try:
        age = (_instant(now) - _instant(created)).total_seconds()
    except ValueError:
        return 0.0
    allowed = CLAIM_PROVISIONING_SECONDS if provisioner else CLAIM_FIRST_LOOK_SECONDS
    return max(0.0, allowed - age)


def _instant(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _not_provided(provisioner: str) -> str:
    return f"provisioner {provisioner} has not provided a volume"


def _held_by_claim(pod: PodState) -> bool:
    """The scheduler refused ``pod`` only because a claim it mounts is not bound yet (or has not
    reached the scheduler yet)."""
    why = pod.unschedulable or ""
    return not pod.terminating and (UNBOUND_CLAIM in why or _CLAIM_NOT_SEEN.search(why) is not None)


def _cache_wait(o: Observation, now: str) -> float:
    """Seconds the weight cache's Pending claim still has to bind (0 for a claim stored without a
    class: nothing will ever provision it, ``NoStorageClass``)."""
    c = o.claim
    if c is None or not c.storage_class:
        return 0.0
    return claim_wait(c.phase, c.provisioner, c.created, now)


def _cache_claim_may_bind(o: Observation, now: str) -> bool:
    """A download pod refused only for its unbound claim is excused: the claim is Bound already
    (the pod's condition is the scheduler's last try, which it repeats when the claim binds),
    not seen yet, or Pending with time left to bind."""
    c = o.claim
    return c is None or c.phase in ("", "Bound") or _cache_wait(o, now) > 0


def _volume_wait(o: Observation, now: str) -> float:
    v = o.volume
    return 0.0 if v is None else claim_wait(v.phase, v.provisioner, v.created, now)


def recheck_after(o: Observation, now: str) -> float | None:
    """When to look again: the seconds until a claim's time to bind runs out while pods wait for
    it (the status excuses them until then). Nothing else changes at that moment, so no watch
    event would bring the object back to report the claim."""
    if o.weights == "Downloading" and any(_held_by_claim(p) for p in o.download_pods):
        wait = _cache_wait(o, now)
    elif o.weights == "VolumeNotBound" and any(_held_by_claim(p) for p in o.pods):
        wait = _volume_wait(o, now)
    else:
        return None
    # Timestamps have whole seconds: one more makes sure the time is up when it runs.
    return wait + 1 if wait > 0 else None


def _weights(o: Observation, now: str) -> JSON:
    if o.plan is None:
        return _cond(CONDITION_WEIGHTS_READY, None, "NotPlanned", "no plan yet")
    if o.weights == "NotCached":
        return _cond(
            CONDITION_WEIGHTS_READY,
            True,
            "DownloadAtStart",
            "no cache: each pod fetches the weights when it starts",
        )
    if o.weights == "Downloaded":
        return _cond(CONDITION_WEIGHTS_READY, True, "Downloaded", "the weight cache is filled")
    if o.volume is not None and o.weights in ("VolumeNotFound", "VolumeNotBound", "ProvidedVolume"):
        return _volume(o.volume, o.weights)
    if o.weights == "Failed":
        msg = o.job.message if o.job and o.job.message else "the download Job failed"
        return _cond(CONDITION_WEIGHTS_READY, False, "DownloadFailed", msg)
    if stuck := _download_stuck(o, now):
        return _cond(CONDITION_WEIGHTS_READY, False, *stuck)
    return _cond(
        CONDITION_WEIGHTS_READY, False, "Downloading", "the download Job is filling the weight cache"
    )


def _volume(v: ProvidedVolume, weights: Weights) -> JSON:
    where = f"directory {v.path} of " if v.path else ""
    if weights == "VolumeNotFound":
        return _cond(
            CONDITION_WEIGHTS_READY,
            False,
            "VolumeNotFound",
            f"PersistentVolumeClaim {v.claim} (source.persistentVolumeClaim.claimName) does not exist in "
            "this namespace; the vLLM Deployment is created once it does",
        )
    if weights == "VolumeNotBound":
        return _cond(
            CONDITION_WEIGHTS_READY,
            False,
            "VolumeNotBound",
            f"PersistentVolumeClaim {v.claim} is {v.phase or 'Pending'}, not Bound: the vLLM pods start once it binds",
        )
    return _cond(
        CONDITION_WEIGHTS_READY,
        True,
        "ProvidedVolume",
        f"the weights are read from {where}PersistentVolumeClaim {v.claim}, mounted read-only",
    )


def _download_stuck(o: Observation, now: str) -> tuple[str, str] | None:
    """Why a download that is "in progress" can never finish on its own, or None.

    A claim nothing provisions (no StorageClass named and no default class, or a class whose
    provisioner is missing) stays Pending, and the scheduler then refuses the download pod
    ("pod has unbound immediate PersistentVolumeClaims"): without this the cache would read
    as Downloading forever. The scheduler says the same of a claim a provisioner is making:
    its first try often comes before the volume does. So a pod refused only for that is
    reported once its claim's time to bind is up (``claim_wait``), not before.
    """
    if o.weights != "Downloading":
        return None
    pods = [p for p in o.download_pods if not p.terminating]
    claim = ""
    if (c := o.claim) is not None and c.phase == "Pending":
        if not c.storage_class:
            claim = (
                f"; PVC {c.name} is Pending with no storageClassName: the cluster has no default "
                "StorageClass, set source.cache.storageClassName"
            )
        else:
            why = (
                _not_provided(c.provisioner)
                if c.provisioner
                else "no provisioner was asked for a volume: does the class exist?"
            )
            claim = f"; PVC {c.name} is Pending (storageClassName {c.storage_class}; {why})"
    binding = _cache_claim_may_bind(o, now)
    stuck = next((p for p in pods if p.unschedulable and not (binding and _held_by_claim(p))), None)
    if stuck is not None:
        return (
            "DownloadUnschedulable",
            f"download pod {stuck.name} cannot be scheduled: {stuck.unschedulable}{claim}",
        )
    failing = next((p for p in pods if p.waiting_reason in FAILING_WAIT_REASONS), None)
    if failing is not None:
        reason = failing.waiting_reason or "PodsFailing"
        return reason, f"download pod {failing.name} is in {reason}"
    if o.claim is not None and o.claim.phase == "Pending" and not o.claim.storage_class:
        # The API server's DefaultStorageClass admission fills in the default class on create:
        # a claim stored without one means the cluster had none, and nothing will provision it.
        return "NoStorageClass", (
            f"PVC {o.claim.name} is Pending with no storageClassName and the cluster has no default "
            "StorageClass: set source.cache.storageClassName, or mark a class default"
        )
    return None


def _unschedulable(o: Observation) -> tuple[list[PodState], list[PodState]]:
    # Pods held back only by an unbound claim are the claim's doing: the user's claim reports
    # them (_volume_stuck), and once it is Bound the scheduler tries them again (the message
    # is from its last try). The weight cache's claim is Bound before the Deployment exists.
    stuck = [p for p in o.pods if p.unschedulable and not p.terminating and not _held_by_claim(p)]
    gpu = [p for p in stuck if _INSUFFICIENT_GPU.search(p.unschedulable or "")]
    return gpu, [p for p in stuck if p not in gpu]


def _volume_stuck(o: Observation, now: str) -> JSON | None:
    """Degraded for the user's claim (source.persistentVolumeClaim) that is not Bound and holds
    the vLLM pods back past its time to bind, or is Lost; None otherwise. The scheduler's own
    message (unbound immediate claims) is a consequence and does not name the claim."""
    v = o.volume
    if o.weights != "VolumeNotBound" or v is None:
        return None
    if v.phase == "Lost":
        return _cond(
            CONDITION_DEGRADED,
            True,
            "VolumeNotBound",
            f"PersistentVolumeClaim {v.claim} is Lost: its PersistentVolume is gone; the vLLM pods "
            "cannot mount it until it is bound again",
        )
    held = [p for p in o.pods if _held_by_claim(p)]
    if not held or _volume_wait(o, now) > 0:
        return None
    why = (
        _not_provided(v.provisioner)
        if v.provisioner
        else "no provisioner was asked for a volume: create the PersistentVolume it names "
        "(spec.volumeName) or one that matches it, or give it a StorageClass that provisions"
    )
    return _cond(
        CONDITION_DEGRADED,
        True,
        "VolumeNotBound",
        f"PersistentVolumeClaim {v.claim} is {v.phase or 'Pending'}, not Bound ({why}); "
        f"{len(held)} of {len(o.pods)} vLLM pods cannot be scheduled until it is",
    )


def _degraded(o: Observation, now: str) -> JSON:
    if o.spec_error:
        return _cond(CONDITION_DEGRADED, True, "InvalidSpec", o.spec_error)
    if o.refusal:
        return _cond(CONDITION_DEGRADED, True, o.refusal[0], o.refusal[1])
    if o.apply_error:
        return _cond(CONDITION_DEGRADED, True, "ApplyFailed", o.apply_error)
    if o.weights in ("Failed", "VolumeNotFound") or _download_stuck(o, now):
        return _weights(o, now) | {"type": CONDITION_DEGRADED, "status": "True"}
    if volume := _volume_stuck(o, now):
        return volume
    if o.deployment and o.deployment.replica_failure:
        reason, message = o.deployment.replica_failure
        return _cond(CONDITION_DEGRADED, True, reason, f"the vLLM pods cannot be created: {message}")
    gpu, other = _unschedulable(o)
    if gpu:
        return _cond(
            CONDITION_DEGRADED,
            True,
            "InsufficientGPU",
            f"{len(gpu)} of {len(o.pods)} vLLM pods cannot be scheduled: {gpu[0].unschedulable}",
        )
    if other:
        return _cond(
            CONDITION_DEGRADED,
            True,
            "Unschedulable",
            f"{len(other)} of {len(o.pods)} vLLM pods cannot be scheduled: {other[0].unschedulable}",
        )
    failing = [p for p in o.pods if p.waiting_reason in FAILING_WAIT_REASONS]
    if failing:
        reason = failing[0].waiting_reason or "PodsFailing"
        return _cond(
            CONDITION_DEGRADED,
            True,
            reason,
            f"{len(failing)} vLLM pods are in {reason} (pod {failing[0].name})",
        )
    if o.deployment and o.deployment.progress_deadline_exceeded:
        return _cond(
            CONDITION_DEGRADED, True, "ProgressDeadlineExceeded", "the rollout exceeded its progress deadline"
        )
    return _cond(CONDITION_DEGRADED, False, "AsExpected", "")


def _rollout_done(o: Observation) -> bool:
    d = o.deployment
    return bool(
        d
        and d.observed_generation >= d.generation
        and d.updated_replicas >= o.desired_replicas
        and d.replicas == o.desired_replicas
        and d.available_replicas >= o.desired_replicas
    )


def _progressing(o: Observation, degraded: JSON) -> JSON:
    if o.plan is None:
        return _cond(
            CONDITION_PROGRESSING, False, "NotPlanned", "nothing to roll out until the spec can be planned"
        )
    if o.weights in ("Downloading", "Failed"):
        return _cond(
            CONDITION_PROGRESSING,
            False,
            "WaitingForWeights",
            "the Deployment starts once the weights are cached",
        )
    if o.weights == "VolumeNotFound" and o.deployment is None:
        return _cond(
            CONDITION_PROGRESSING,
            False,
            "WaitingForWeights",
            "the Deployment is created once the weights' PersistentVolumeClaim exists",
        )
    if o.apply_error:
        return _cond(CONDITION_PROGRESSING, False, "ApplyFailed", o.apply_error)
    if o.deployment is None:
        return _cond(CONDITION_PROGRESSING, True, "Creating", "creating the vLLM Deployment")
    if degraded["reason"] in ("InsufficientGPU", "ProgressDeadlineExceeded"):
        return _cond(CONDITION_PROGRESSING, False, degraded["reason"], degraded["message"])
    if _rollout_done(o):
        return _cond(CONDITION_PROGRESSING, False, "Complete", f"{o.desired_replicas} replicas up to date")
    d = o.deployment
    return _cond(
        CONDITION_PROGRESSING,
        True,
        "RollingOut",
        f"{d.updated_replicas} of {o.desired_replicas} replicas updated, {d.ready_replicas} ready"
        + (f" (rollout: {o.rollout})" if o.rollout else ""),
    )


def _ready(o: Observation) -> JSON:
    if o.plan is None and (o.serving_plan is None or o.deployment is None):
        return _cond(CONDITION_READY, False, "NotPlanned", "the spec cannot be planned")
    if o.desired_replicas == 0:
        return _cond(CONDITION_READY, False, "ScaledToZero", "spec.replicas is 0")
    ready = o.deployment.ready_replicas if o.deployment else 0
    # Ready means "the model is served at full strength": during a Surge rollout the old
    # replicas keep serving, so a rollout alone does not make it unready (Progressing says it).
    if ready >= o.desired_replicas:
        return _cond(
            CONDITION_READY,
            True,
            "Serving",
            f"{ready}/{o.desired_replicas} replicas serve {o.model} at {o.endpoint}"
            + ("" if o.plan else " (the last good plan: the current spec is not planned)"),
        )
    return _cond(CONDITION_READY, False, "Starting", f"{ready}/{o.desired_replicas} replicas ready")


def set_conditions(
    previous: Sequence[JSON], current: Sequence[JSON], generation: int, now: str
) -> list[JSON]:
    """``current`` (type, status, reason, message) as stored conditions, for either kind.

    Each gets ``observedGeneration``; ``lastTransitionTime`` is kept from the previous condition
    of the same type while its status is unchanged and set to ``now`` otherwise (the semantics of
    meta.SetStatusCondition in k8s.io/apimachinery/pkg/api/meta/conditions.go), so a change of
    reason or message alone does not look like a transition.
    """
    before = {c.get("type"): c for c in previous}
    out = []
    for new in current:
        cond = new | {"observedGeneration": generation}
        old = before.get(cond["type"])
        kept = (
            old.get("lastTransitionTime") if old is not None and old.get("status") == cond["status"] else None
        )
        cond["lastTransitionTime"] = kept or now
        out.append(cond)
    return out


def phase(conditions: dict[str, JSON], ready_replicas: int, pods: Sequence[PodState]) -> str:
    planned, weights = conditions[CONDITION_PLANNED], conditions[CONDITION_WEIGHTS_READY]
    ready, degraded = conditions[CONDITION_READY], conditions[CONDITION_DEGRADED]
    if planned["status"] != "True":
        # A refused edit leaves the running Deployment alone: while it serves, that is
        # Degraded (the old plan serves), not Failed.
        return "Degraded" if ready_replicas > 0 else "Failed"
    if degraded["reason"] == "DownloadFailed":
        return "Failed"
    if weights["reason"] == "Downloading":
        return "Downloading"
    if ready["status"] == "True" and degraded["status"] == "False":
        return "Ready"
    if ready["reason"] == "ScaledToZero":
        # spec.replicas 0 is a deliberate "off", not a wait: Pending would say something is
        # still to come. No pods are wanted, so none waiting for GPUs softens a Degraded.
        return "Degraded" if degraded["status"] == "True" else "ScaledToZero"
    # Pods waiting for GPUs with none serving are Pending (the condition says why); anything
    # else wrong (crash loops, bad image, failed applies) is Degraded even with 0 ready.
    # A user's claim that does not bind is the same kind of wait: for something outside the
    # object (nodes, a volume), with nothing of its own broken.
    waiting_for_nodes = degraded["reason"] in ("InsufficientGPU", "Unschedulable", "VolumeNotBound")
    if degraded["status"] == "True" and (ready_replicas > 0 or not waiting_for_nodes):
        return "Degraded"
    if any(p.node and not p.terminating for p in pods):
        return "Starting"
    return "Pending"


def phase_reason(conditions: dict[str, JSON], phase_: str) -> str:
    """The reason behind ``phase``, for the Reason printer column (empty when Ready)."""
    if phase_ == "Ready":
        return ""
    planned, degraded = conditions[CONDITION_PLANNED], conditions[CONDITION_DEGRADED]
    if planned["status"] != "True":
        return str(planned["reason"])
    if degraded["status"] == "True":
        return str(degraded["reason"])
    weights = conditions[CONDITION_WEIGHTS_READY]
    if phase_ == "Downloading" or weights["reason"] == "VolumeNotBound":
        # A claim not bound yet is why the pods wait: more use in the column than RollingOut.
        return str(weights["reason"])
    if phase_ in ("Starting", "ScaledToZero"):
        return str(conditions[CONDITION_READY]["reason"])
    return str(conditions[CONDITION_PROGRESSING]["reason"])


def evaluate(o: Observation, previous: Sequence[JSON], now: str) -> JSON:
    """The full ``status`` to write. ``previous`` conditions keep their lastTransitionTime
    while their status does not change (meta.SetStatusCondition semantics)."""
    degraded = _degraded(o, now)
    new = {
        CONDITION_PLANNED: _planned(o),
        CONDITION_WEIGHTS_READY: _weights(o, now),
        CONDITION_PROGRESSING: _progressing(o, degraded),
        CONDITION_READY: _ready(o),
        CONDITION_DEGRADED: degraded,
    }
    conditions = set_conditions(previous, [new[t] for t in CONDITION_ORDER], o.generation, now)
    d = o.deployment
    ready_replicas = d.ready_replicas if d else 0
    replicas = d.replicas if d else 0
    phase_ = phase(new, ready_replicas, o.pods)
    plan = o.plan or (o.serving_plan if d is not None else None)
    status: JSON = {
        "observedGeneration": o.generation,
        "phase": phase_,
        "reason": phase_reason(new, phase_),
        "conditions": conditions,
        "replicas": replicas,
        "readyReplicas": ready_replicas,
        "readyText": ready_text(ready_replicas, o.desired_replicas),
        "selector": o.selector,
        "plan": plan.model_dump(by_alias=True, mode="json") if plan else None,
        "rolloutStrategy": o.rollout,
        "endpoint": o.endpoint if plan else None,
    }
    return status


_WARNING_WHEN_FALSE = {CONDITION_PLANNED, CONDITION_WEIGHTS_READY}
# WeightsReady=False reasons that are a normal step, not a fault: a download in progress, and a
# claim not bound yet (a WaitForFirstConsumer StorageClass binds it only once a pod uses it:
# https://kubernetes.io/docs/concepts/storage/storage-classes/#volume-binding-mode).
_ON_THE_WAY = frozenset({"Downloading", "VolumeNotBound"})


def transitions(previous: Sequence[JSON], current: Sequence[JSON]) -> list[Event]:
    """Events for conditions whose status or reason changed, when someone may act on it.

    Not recorded: Progressing (left to the Deployment's own events, it changes on every
    replica); anything about a new object that is not a Warning (its first status says it all:
    planned, not ready yet, not degraded); Ready turning True (the happy path: status, ``kubectl
    get`` and ``kubectl wait --for=condition=Ready`` show it). Kubernetes' own controllers do the
    same: the Deployment controller posts ScalingReplicaSet events, not one per status change.
    Each Event is an API write; on the way to Ready these were two per object, as many as the
    Deployment and Service together (docs/operator.md, Scale)."""
    before = {c.get("type"): c for c in previous}
    events: list[Event] = []
    said: set[tuple[str, str]] = set()
    for cond in current:
        type_ = cond["type"]
        if type_ == CONDITION_PROGRESSING:
            continue
        if cond["reason"] == "NotPlanned" or (cond["reason"], cond["message"]) in said:
            # One event per cause: a refusal is Planned=False, and Degraded (same reason and
            # message) or "not planned" elsewhere would only repeat it.
            continue
        old = before.get(type_)
        if old and (old.get("status"), old.get("reason")) == (cond["status"], cond["reason"]):
            continue
        bad = (type_ == CONDITION_DEGRADED and cond["status"] == "True") or (
            type_ in _WARNING_WHEN_FALSE and cond["status"] == "False" and cond["reason"] not in _ON_THE_WAY
        )
        if not bad and (
            not old
            or (type_ == CONDITION_READY and cond["status"] == "True")
            # Back on the way (Downloading, VolumeNotBound) from a problem the Warning told:
            # Degraded's AsExpected says the recovery, once. (From Downloaded, Downloading is
            # news: the cache fills again for a new repo or revision.)
            or (cond["reason"] in _ON_THE_WAY and old.get("status") == "False")
        ):
            continue
        said.add((cond["reason"], cond["message"]))
        message = cond["message"] or f"{type_} is {cond['status']}"
        events.append(Event("Warning" if bad else "Normal", cond["reason"], f"{type_}: {message}"))
    return events
