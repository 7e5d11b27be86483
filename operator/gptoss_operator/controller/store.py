"""The operator's in-memory view of the cluster, fed by kopf's watch events.

It holds ModelDeployment and RoutePolicy bodies (they are what we reconcile) and only
summaries of everything else (see ``observed``): a Secret is remembered as its name and the
names of its keys, never its content. Keys are ``(namespace, name)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gptoss_operator.observed import (
    ChildState,
    ClaimState,
    GpuUse,
    NodeState,
    OwnedDigests,
    PodState,
    RoutePolicyRefs,
    gpu_use_of,
    provided_claim_name,
    route_policy_refs,
)

Key = tuple[str, str]


@dataclass
class ChildIndex:
    """Owned children by owner key, one per kind (each owner has at most one child of a kind)."""

    by_owner: dict[Key, dict[str, ChildState]] = field(default_factory=lambda: defaultdict(dict))

    def set(self, owner: Key, child: ChildState) -> None:
        self.by_owner[owner][child.kind] = child

    def drop(self, owner: Key, kind: str, name: str) -> None:
        kids = self.by_owner.get(owner)
        if kids and kids.get(kind) and kids[kind].name == name:
            del kids[kind]
            if not kids:
                del self.by_owner[owner]

    def get(self, owner: Key, kind: str) -> ChildState | None:
        kids = self.by_owner.get(owner)
        return kids.get(kind) if kids else None

    def of(self, owner: Key) -> dict[str, ChildState]:
        return dict(self.by_owner.get(owner) or {})


@dataclass
class Store:
    model_deployments: dict[Key, dict[str, Any]] = field(default_factory=dict)
    model_deployment_children: ChildIndex = field(default_factory=ChildIndex)
    route_policies: dict[Key, dict[str, Any]] = field(default_factory=dict)
    route_policy_children: ChildIndex = field(default_factory=ChildIndex)
    # What each RoutePolicy refers to, so a change to a ModelDeployment or Secret requeues it.
    route_policy_refs: dict[Key, RoutePolicyRefs] = field(default_factory=dict)
    # Every PersistentVolumeClaim in the watched namespaces, as its name and phase: a
    # ModelDeployment may load its weights from any of them (source.persistentVolumeClaim). kopf's
    # PVC watch carries no label selector (its handlers' label filters are applied in-process), so
    # the operator receives these events whether it keeps them or not; keeping a summary costs a
    # few bytes per claim and spares a GET per reconcile.
    claims: dict[Key, ClaimState] = field(default_factory=dict)
    # ModelDeployment -> the claim its spec names, so a claim's events requeue the objects using it.
    claim_users: dict[Key, str] = field(default_factory=dict)
    secret_keys: dict[Key, frozenset[str]] = field(default_factory=dict)
    pods: dict[Key, PodState] = field(default_factory=dict)
    pods_by_owner: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))
    nodes: dict[str, NodeState] = field(default_factory=dict)
    # GPUs in use per (node, resource), kept up to date by set_pod/drop_pod, so an Auto rollout
    # asks O(nodes) questions instead of walking every pod for every new object. Equal to
    # ``observed.gpus_in_use(self.pods.values())`` at all times (tests/unit/operator/test_store.py).
    gpu_use: dict[tuple[str, str], int] = field(default_factory=dict)
    # The frozen copy gather hands decide, rebuilt only after the index changed: a burst of
    # new objects with no pod events in between shares one copy.
    _gpu_use_view: GpuUse | None = field(default=None, init=False, repr=False, compare=False)
    # Objects a write found gone (404) although no DELETED event came: (kind, namespace, name) ->
    # uid. A LIST served from an API server's stale watch cache can still return them; the relist
    # must not bring back the same object (same uid) the API server already said is gone.
    gone: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # uids of objects in a namespace a write found terminating. The namespace controller deletes
    # every one of them, and the API server refuses anything new in that namespace: each child
    # the controller deletes first would otherwise bring a reconcile, a refused apply and a
    # retry, hundreds of writes for a namespace of models. An object created later (a namespace
    # of the same name made again) has a new uid. Each uid leaves with its object's deletion.
    doomed: set[str] = field(default_factory=set)
    # Memo of the digest of the fields the operator owns on each child (see observed.py): most
    # child watch events are status updates that change none of them.
    owned_digests: OwnedDigests = field(default_factory=OwnedDigests)

    # ModelDeployment children (the names the ModelDeployment controller and tests use)
    @property
    def children(self) -> dict[Key, dict[str, ChildState]]:
        return self.model_deployment_children.by_owner

    def set_child(self, owner: Key, child: ChildState) -> None:
        self.model_deployment_children.set(owner, child)

    def being_deleted(self, body: dict[str, Any]) -> bool:
        """The object is being deleted, or its namespace is: nothing is left to reconcile."""
        meta = body["metadata"]
        return bool(meta.get("deletionTimestamp")) or meta.get("uid") in self.doomed

    def forget_uid(self, body: dict[str, Any] | None) -> None:
        """An object's deletion: its uid leaves ``doomed``."""
        if body is not None:
            self.doomed.discard((body.get("metadata") or {}).get("uid", ""))

    def put_model_deployment(self, key: Key, body: dict[str, Any]) -> None:
        self.model_deployments[key] = body
        claim = provided_claim_name(body)
        if claim is None:
            self.claim_users.pop(key, None)
        else:
            self.claim_users[key] = claim

    def drop_model_deployment(self, key: Key) -> None:
        self.forget_uid(self.model_deployments.pop(key, None))
        self.claim_users.pop(key, None)

    def put_route_policy(self, key: Key, body: dict[str, Any]) -> None:
        self.route_policies[key] = body
        self.route_policy_refs[key] = route_policy_refs(body)

    def drop_route_policy(self, key: Key) -> None:
        self.forget_uid(self.route_policies.pop(key, None))
        self.route_policy_refs.pop(key, None)

    def model_deployments_using_claim(self, namespace: str, claim: str) -> list[Key]:
        return [key for key, name in self.claim_users.items() if key[0] == namespace and name == claim]

    def route_policies_referring_to(
        self, namespace: str, *, model_deployment: str = "", secret: str = ""
    ) -> list[Key]:
        return [
            key
            for key, refs in self.route_policy_refs.items()
            if key[0] == namespace
            and (
                (model_deployment and model_deployment in refs.model_deployments)
                or (secret and secret in refs.secrets)
            )
        ]

    def set_pod(self, pod: PodState) -> None:
        key = (pod.namespace, pod.name)
        self.drop_pod(key)
        self.pods[key] = pod
        self._count_gpus(pod, +1)
        if pod.instance:
            self.pods_by_owner[(pod.namespace, pod.instance)].add(pod.name)

    def drop_pod(self, key: Key) -> None:
        old = self.pods.pop(key, None)
        if old is not None:
            self._count_gpus(old, -1)
        if old is not None and old.instance:
            owner = (old.namespace, old.instance)
            names = self.pods_by_owner.get(owner)
            if names is not None:
                names.discard(old.name)
                if not names:
                    del self.pods_by_owner[owner]

    def owned_pods(self, owner: Key) -> list[PodState]:
        return [self.pods[(owner[0], n)] for n in sorted(self.pods_by_owner.get(owner, ()))]

    def gpus_in_use(self) -> GpuUse:
        """A read-only snapshot of ``gpu_use`` (later pod events do not change it)."""
        if self._gpu_use_view is None:
            self._gpu_use_view = MappingProxyType(dict(self.gpu_use))
        return self._gpu_use_view

    def _count_gpus(self, pod: PodState, sign: int) -> None:
        for key, count in gpu_use_of(pod):
            total = self.gpu_use.get(key, 0) + sign * count
            if total:
                self.gpu_use[key] = total
            else:
                del self.gpu_use[key]
            self._gpu_use_view = None
