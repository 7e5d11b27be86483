"""What the operator observed, as small frozen summaries of raw watch bodies (pure functions).

Keeping summaries instead of whole bodies bounds the operator's memory (a Pod body is several
KB; its summary is a few fields) and gives status evaluation a typed, testable input.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gptoss_operator import labels as keys
from gptoss_operator.settings import FIELD_MANAGER

JSON = Mapping[str, Any]

GPU_RESOURCES: Final = ("nvidia.com/gpu", "amd.com/gpu")


@dataclass(frozen=True)
class ChildState:
    """Any owned child: enough to decide whether to re-apply it."""

    kind: str
    name: str
    config_hash: str | None
    # Digest of the fields the operator's field manager owns, as they are on the live object
    # (None when it owns none: not applied by this operator, or no managedFields). Compared with
    # ``applied_digest`` of the manifest to revert hand edits: see ``needs_apply``.
    owned: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class DeploymentState(ChildState):
    generation: int = 0
    observed_generation: int = 0
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    template_hash: str | None = None
    max_surge: str | None = None
    max_unavailable: str | None = None
    progress_deadline_exceeded: bool = False
    # The ReplicaSet could not create pods (the Deployment's ReplicaFailure condition, e.g.
    # FailedCreate: a PriorityClass that does not exist, a quota, an admission webhook, an
    # invalid image name): (reason, message). Without it the object just looks slow to start
    # until the progress deadline, ten minutes later.
    replica_failure: tuple[str, str] | None = None


@dataclass(frozen=True)
class JobState(ChildState):
    succeeded: bool = False
    failed: bool = False
    active: int = 0
    message: str = ""


@dataclass(frozen=True)
class ClaimState(ChildState):
    # Pending, Bound or Lost; "" for a manifest not yet seen from the API server (which sets
    # Pending on create), so a predicted child is never mistaken for a stuck one.
    phase: str = ""
    storage_class: str | None = None  # spec.storageClassName (admission fills in the default class)
    # metadata.creationTimestamp: how long a Pending claim has had to bind (status.claim_wait).
    created: str | None = None
    # The provisioner the PV controller handed the claim to (its storage-provisioner annotation),
    # None while no provisioner was asked for a volume: see status.claim_wait.
    provisioner: str | None = None


# Set by the PV controller when it asks a provisioner (in-tree or external) for a claim's volume
# (setClaimProvisioner in kubernetes pkg/controller/volume/persistentvolume/pv_controller.go);
# never set for a claim that names no class or a class that does not exist. The beta key is the
# one older control planes write.
PROVISIONER_ANNOTATIONS: Final = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)


@dataclass(frozen=True)
class PodState:
    namespace: str
    name: str
    node: str | None
    phase: str
    gpus: Mapping[str, int]
    instance: str | None  # app.kubernetes.io/instance when the operator manages the pod
    managed: bool
    component: str | None = None  # "server" (vLLM) or "download" (the weight Job)
    ready: bool = False
    terminating: bool = False
    unschedulable: str | None = None  # the scheduler's message when it could not place the pod
    waiting_reason: str | None = None  # e.g. CrashLoopBackOff, ImagePullBackOff


@dataclass(frozen=True)
class NodeState:
    name: str
    labels: Mapping[str, str]
    gpus: Mapping[str, int]  # allocatable per GPU resource
    schedulable: bool
    ready: bool
    taints: tuple[tuple[str, str | None, str], ...] = field(default=())


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _annotations(body: JSON) -> Mapping[str, str]:
    annotations: Mapping[str, str] = body.get("metadata", {}).get("annotations") or {}
    return annotations


def summarize_child(body: JSON, digests: OwnedDigests | None = None) -> ChildState:
    """``digests``: the operator's memo of ``owned_digest`` for live children (watch events);
    without it the digest is computed from the body."""
    owned = digests.digest(body) if digests is not None else owned_digest(body, FIELD_MANAGER)
    kind = body.get("kind", "")
    if kind == "Deployment":
        return summarize_deployment(body, owned)
    if kind == "Job":
        return summarize_job(body, owned)
    if kind == "PersistentVolumeClaim":
        return summarize_claim(body, owned)
    return ChildState(kind, body["metadata"]["name"], _annotations(body).get(keys.CONFIG_HASH), owned=owned)


def summarize_claim(body: JSON, owned: str | None = None) -> ClaimState:
    """A PersistentVolumeClaim: the operator's cache PVC, or a user's claim holding the weights."""
    annotations = _annotations(body)
    return ClaimState(
        "PersistentVolumeClaim",
        body["metadata"]["name"],
        annotations.get(keys.CONFIG_HASH),
        phase=(body.get("status") or {}).get("phase") or "",
        storage_class=(body.get("spec") or {}).get("storageClassName"),
        created=body["metadata"].get("creationTimestamp"),
        provisioner=next((annotations[k] for k in PROVISIONER_ANNOTATIONS if annotations.get(k)), None),
        owned=owned,
    )


def provided_claim_name(body: JSON) -> str | None:
    """spec.source.persistentVolumeClaim.claimName of a raw ModelDeployment body, whatever else the
    body holds (it may not parse), so the claim's watch events can requeue it."""
    spec = body.get("spec")
    source = spec.get("source") if isinstance(spec, Mapping) else None
    claim = source.get("persistentVolumeClaim") if isinstance(source, Mapping) else None
    name = claim.get("claimName") if isinstance(claim, Mapping) else None
    return name if isinstance(name, str) and name else None


# ---------------------------------------------------------------------------- drift
#
# A hand edit (kubectl edit/patch/scale) of a field the operator applied moves that field's
# ownership to the editor's field manager (server-side apply, "Conflicts" and "Transferring
# ownership": https://kubernetes.io/docs/reference/using-api/server-side-apply/), and leaves the
# config-hash annotation alone. So the operator also compares the fields its own manager still
# owns, with their live values, to the manifest it would apply: a hand edit of anything it owns,
# an added argument or a removed label makes them differ, and the child is applied again (which
# takes the fields back). Fields others own (a Service's clusterIP, a PVC's volumeName, defaults,
# annotations other tools add) are never looked at.


def needs_apply(have: ChildState | None, manifest: JSON) -> bool:
    """True unless the child exists, carries the manifest's config hash, and nobody changed
    a field the operator owns (as far as the live object's managedFields tell)."""
    if have is None or have.config_hash != manifest["metadata"]["annotations"][keys.CONFIG_HASH]:
        return True
    return have.owned is not None and have.owned != applied_digest(manifest)


def owned_digest(body: JSON, manager: str) -> str | None:
    entry = _apply_entry(body, manager)
    if entry is None:
        return None
    return _digest(_canonical(_project(body, entry["fieldsV1"])))


def _apply_entry(body: JSON, manager: str) -> JSON | None:
    """``manager``'s Apply entry in managedFields (not a subresource's), if it has a field set."""
    for m in body.get("metadata", {}).get("managedFields") or []:
        if m.get("manager") == manager and m.get("operation") == "Apply" and not m.get("subresource"):
            return m if isinstance(m.get("fieldsV1"), dict) else None
    return None


# Why ``owned_digest`` can be memoized, and on what.
#
# The digest is a function of the live values of the fields in our Apply entry's field set F.
# Most watch events of a child change none of them: the deployment controller writes a
# Deployment's status, through the status subresource and as its own manager, each time a
# replica count or condition moves. So the memo keeps, per object (uid), the digest computed for
# the key (F as the API server serialized it, fingerprinted; the entry's time; the config-hash
# annotation; metadata.generation), and gives it to any later body of that object with the
# same key. That is the digest of the later body,
# because with server-side apply a value of a field in F changes in these ways only:
#
# - Another manager changes it. kubectl edit/patch/replace/label/annotate are Updates,
#   and an Update takes ownership of every field it changes; `kubectl apply --server-side
#   --force-conflicts` is a forced Apply, which takes over the conflicting fields; a field
#   someone removes leaves every manager's set ("Conflicts", "Transferring ownership":
#   https://kubernetes.io/docs/reference/using-api/server-side-apply/; the code is
#   Updater.update in sigs.k8s.io/structured-merge-diff merge/update.go, which subtracts the
#   modified and removed fields from every other manager's set). Writes through a subresource
#   are attributed the same way; a change of replicas through /scale also bumps
#   metadata.generation, which is in the key anyway. F changes, so the key does.
# - We apply a manifest with other values. That can leave F as it was (same fields, new
#   values), but not the rest of the key: every manifest carries the hash of its whole content
#   in the config-hash annotation (``manifests.common.with_config_hash``), and the API server
#   sets the entry's time when the manager changes a value of a field it owns (the `time`
#   field of ManagedFieldsEntry in the API reference). Re-applying the same manifest after a
#   hand edit restores the values the key was first computed from.
# - A request that writes managedFields itself, to put a field with a value we did not apply
#   into our entry: a forgery of the ownership record that no kubectl command makes. It is not
#   seen until the key changes again (metadata.generation in the key catches it for the spec
#   of kinds whose spec changes bump it, such as Deployments and Jobs; a metadata-only forgery
#   is caught by our next apply of that child or an operator restart).
#
# The memo holds one key per object (its last), is dropped when the child is deleted, and is
# bounded in total (the oldest entry goes first), so objects that come and go cannot grow it.

_DigestKey = tuple[bytes, Any, Any, Any]


def _fingerprint(fields: Any) -> bytes:
    """SHA-256 of a field set as parsed from the API server's JSON. marshal is several times
    faster than json.dumps on these nested dicts; format 0 writes every string the same way
    (later formats mark interned strings), and equal bytes decode to equal sets. The API server
    serializes a field set in one order, so the same set gives the same bytes."""
    return hashlib.sha256(marshal.dumps(fields, 0)).digest()


class OwnedDigests:
    """Memo of ``owned_digest(body, manager)`` per live object (see the comment above)."""

    def __init__(self, manager: str = FIELD_MANAGER, max_entries: int = 32_768) -> None:
        self.manager = manager
        self.max_entries = max_entries
        self._by_uid: dict[str, tuple[_DigestKey, str]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._by_uid)

    def digest(self, body: JSON) -> str | None:
        meta = body.get("metadata", {})
        uid = meta.get("uid")
        entry = _apply_entry(body, self.manager)
        if entry is None or not uid:
            return None if entry is None else owned_digest(body, self.manager)
        try:
            fingerprint = _fingerprint(entry["fieldsV1"])
        except ValueError:  # not plain JSON values (never from a watch): no memo
            return owned_digest(body, self.manager)
        key = (
            fingerprint,
            entry.get("time"),
            (meta.get("annotations") or {}).get(keys.CONFIG_HASH),
            meta.get("generation"),
        )
        cached = self._by_uid.get(uid)
        if cached is not None and cached[0] == key:
            self.hits += 1
            return cached[1]
        self.misses += 1
        value = _digest(_canonical(_project(body, entry["fieldsV1"])))
        self._by_uid.pop(uid, None)  # re-inserted at the end: the oldest key goes first
        while len(self._by_uid) >= self.max_entries:
            del self._by_uid[next(iter(self._by_uid))]
        self._by_uid[uid] = (key, value)
        return value

    def forget(self, uid: str) -> None:
        """The object was deleted."""
        self._by_uid.pop(uid, None)


def applied_digest(manifest: JSON) -> str:
    """What ``owned_digest`` is for a child that is exactly ``manifest``."""
    meta = {k: v for k, v in manifest.get("metadata", {}).items() if k not in ("name", "namespace")}
    rest = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    return _digest(_canonical({"metadata": meta, **rest}))


def _project(value: Any, fields: Any) -> Any:
    """``value`` restricted to the fields of a managedFields ``fieldsV1`` set."""
    if not isinstance(fields, dict) or not [k for k in fields if k != "."]:
        return value  # a leaf: the whole value is owned (atomic lists and maps included)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in fields.items():
            if key.startswith("f:") and key[2:] in value:
                out[key[2:]] = _project(value[key[2:]], sub)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for key, sub in fields.items():
            if key.startswith("k:"):
                want = json.loads(key[2:])
                match = next(
                    (e for e in value if isinstance(e, dict) and all(e.get(a) == b for a, b in want.items())),
                    None,
                )
                if match is not None:
                    items.append(_project(match, sub))
            elif key.startswith("v:"):
                element = json.loads(key[2:])
                if element in value:
                    items.append(element)
            elif key.startswith("i:") and int(key[2:]) < len(value):
                items.append(_project(value[int(key[2:])], sub))
        return items
    return value


def _canonical(value: Any) -> Any:
    """Equal for the applied manifest and the live object it became: ``false`` is dropped
    (Go's ``omitempty`` drops some booleans such as a volume mount's ``readOnly``), and lists
    of objects are sorted (keyed lists come back in any order); lists of scalars, such as
    ``args``, keep their order."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items() if v is not False}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if all(isinstance(v, dict) for v in items):
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def summarize_deployment(body: JSON, owned: str | None = None) -> DeploymentState:
    meta, spec, status = body["metadata"], body.get("spec", {}), body.get("status", {}) or {}
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    conditions = {c.get("type"): c for c in status.get("conditions", []) or []}
    progressing = conditions.get("Progressing", {})
    # The deployment controller copies a ReplicaSet's ReplicaFailure condition to the
    # Deployment and drops it once pods are created again (pkg/controller/deployment/sync.go,
    # syncRolloutStatus -> getReplicaFailures).
    failure = conditions.get("ReplicaFailure", {})
    return DeploymentState(
        kind="Deployment",
        name=meta["name"],
        config_hash=_annotations(body).get(keys.CONFIG_HASH),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        replicas=_int(status.get("replicas")),
        ready_replicas=_int(status.get("readyReplicas")),
        updated_replicas=_int(status.get("updatedReplicas")),
        available_replicas=_int(status.get("availableReplicas")),
        template_hash=_annotations(body).get(keys.TEMPLATE_HASH),
        max_surge=None if rolling.get("maxSurge") is None else str(rolling["maxSurge"]),
        max_unavailable=None if rolling.get("maxUnavailable") is None else str(rolling["maxUnavailable"]),
        progress_deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        replica_failure=(
            (str(failure.get("reason") or "ReplicaFailure"), str(failure.get("message") or ""))
            if failure.get("status") == "True"
            else None
        ),
        owned=owned,
    )


def summarize_job(body: JSON, owned: str | None = None) -> JobState:
    status = body.get("status", {}) or {}
    conditions = {c.get("type"): c for c in status.get("conditions", []) or [] if c.get("status") == "True"}
    failed = conditions.get("Failed")
    return JobState(
        kind="Job",
        name=body["metadata"]["name"],
        config_hash=_annotations(body).get(keys.CONFIG_HASH),
        succeeded="Complete" in conditions or _int(status.get("succeeded")) > 0,
        failed=failed is not None,
        active=_int(status.get("active")),
        message=(failed or {}).get("message", ""),
        owned=owned,
    )


def _gpu_requests(pod_spec: JSON) -> dict[str, int]:
    # Extended resources must have requests == limits; either one tells the count.
    totals: dict[str, int] = {}
    for container in pod_spec.get("containers", []) or []:
        resources = container.get("resources") or {}
        merged = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
        for name in GPU_RESOURCES:
            if name in merged:
                totals[name] = totals.get(name, 0) + _int(merged[name])
    return totals


def summarize_pod(body: JSON, managed_by: str) -> PodState:
    meta, spec, status = body["metadata"], body.get("spec", {}), body.get("status", {}) or {}
    labels = meta.get("labels") or {}
    conditions = {c.get("type"): c for c in status.get("conditions", []) or []}
    scheduled = conditions.get("PodScheduled", {})
    unschedulable = (
        scheduled.get("message") or "unschedulable"
        if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
        else None
    )
    waiting = next(
        (
            cs["state"]["waiting"].get("reason")
            for cs in status.get("containerStatuses", []) or []
            if (cs.get("state") or {}).get("waiting")
        ),
        None,
    )
    managed = labels.get(keys.MANAGED_BY) == managed_by
    return PodState(
        namespace=meta["namespace"],
        name=meta["name"],
        node=spec.get("nodeName"),
        phase=status.get("phase", "Pending"),
        gpus=_gpu_requests(spec),
        instance=labels.get(keys.INSTANCE) if managed else None,
        managed=managed,
        component=labels.get(keys.COMPONENT) if managed else None,
        ready=conditions.get("Ready", {}).get("status") == "True",
        terminating=meta.get("deletionTimestamp") is not None,
        unschedulable=unschedulable,
        waiting_reason=waiting,
    )


def summarize_node(body: JSON) -> NodeState:
    meta, spec, status = body["metadata"], body.get("spec", {}), body.get("status", {}) or {}
    allocatable = status.get("allocatable") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions", []) or []}
    return NodeState(
        name=meta["name"],
        labels=dict(meta.get("labels") or {}),
        gpus={r: _int(allocatable[r]) for r in GPU_RESOURCES if r in allocatable},
        schedulable=not spec.get("unschedulable", False),
        ready=conditions.get("Ready") == "True",
        taints=tuple(
            (t.get("key", ""), t.get("value"), t.get("effect", "")) for t in spec.get("taints", []) or []
        ),
    )


@dataclass(frozen=True)
class Capacity:
    """Room on matching nodes for whole replicas of ``gpus_per_replica`` GPUs."""

    replica_slots: int
    matching_nodes: int
    free_gpus: int

    def describe(self, gpus_per_replica: int) -> str:
        return (
            f"{self.matching_nodes} matching nodes have {self.free_gpus} free GPUs "
            f"(room for {self.replica_slots} more replicas of {gpus_per_replica} GPUs)"
        )


GpuUse = Mapping[tuple[str, str], int]
"""(node, GPU resource) -> GPUs its non-terminal pods request; nodes and resources at 0 absent."""


def gpu_use_of(pod: PodState) -> Iterable[tuple[tuple[str, str], int]]:
    """What ``pod`` adds to :data:`GpuUse`: nothing unless it is placed on a node and not
    finished (a Succeeded or Failed pod no longer holds its GPUs; a terminating one still does)."""
    if not pod.node or pod.phase in ("Succeeded", "Failed"):
        return ()
    return (((pod.node, resource), count) for resource, count in pod.gpus.items() if count)


def gpus_in_use(pods: Iterable[PodState]) -> dict[tuple[str, str], int]:
    """:data:`GpuUse` computed from scratch (the store maintains the same thing incrementally)."""
    used: dict[tuple[str, str], int] = {}
    for pod in pods:
        for key, count in gpu_use_of(pod):
            used[key] = used.get(key, 0) + count
    return {key: count for key, count in used.items() if count}


def spare_capacity(
    nodes: Iterable[NodeState],
    used: GpuUse,
    *,
    resource: str,
    node_labels: Mapping[str, Iterable[str]],
    gpus_per_replica: int,
) -> Capacity:
    """How many more replicas fit on nodes whose labels match ``node_labels`` (key -> allowed values).

    Free GPUs per node = allocatable - GPUs requested by its non-terminal pods (``used``, see
    :func:`gpus_in_use`); a replica needs all its GPUs on one node (tensor parallelism runs
    inside one pod). O(nodes): the per-node usage is an index the store keeps up to date from
    pod events, not a walk over every pod for each new object.
    """
    wanted = {k: set(v) for k, v in node_labels.items()}
    slots = matching = free_total = 0
    for node in nodes:
        if not (node.schedulable and node.ready and node.gpus.get(resource)):
            continue
        if any(node.labels.get(k) not in allowed for k, allowed in wanted.items()):
            continue
        matching += 1
        free = max(0, node.gpus[resource] - used.get((node.name, resource), 0))
        free_total += free
        slots += free // max(1, gpus_per_replica)
    return Capacity(replica_slots=slots, matching_nodes=matching, free_gpus=free_total)


@dataclass(frozen=True)
class RoutePolicyRefs:
    """The names a RoutePolicy refers to in its namespace (from its raw spec, even an invalid one)."""

    model_deployments: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()


def route_policy_refs(body: JSON) -> RoutePolicyRefs:
    mds: set[str] = set()
    secrets: set[str] = set()
    for route in (body.get("spec") or {}).get("routes") or []:
        for backend in (route or {}).get("backends") or [] if isinstance(route, dict) else []:
            if not isinstance(backend, dict):
                continue
            md = backend.get("modelDeployment") or {}
            if isinstance(md, dict) and isinstance(md.get("name"), str):
                mds.add(md["name"])
            ref = (
                (backend.get("external") or {}).get("apiKeySecretRef")
                if isinstance(backend.get("external"), dict)
                else None
            )
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                secrets.add(ref["name"])
    return RoutePolicyRefs(frozenset(mds), frozenset(secrets))


def secret_key_names(body: JSON) -> frozenset[str]:
    """The keys a Secret holds: names only, the values are never kept."""
    return frozenset((body.get("data") or {}).keys()) | frozenset((body.get("stringData") or {}).keys())
