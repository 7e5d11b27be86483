"""The operator's in-memory view of the cluster, fed by kopf's watch events.

It holds ModelDeployment bodies (they are what we reconcile) and only summaries of everything
else (see ``observed``). Keys are ``(namespace, name)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator.observed import ChildState, NodeState, PodState

Key = tuple[str, str]


@dataclass
class Store:
    model_deployments: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # (namespace, owner name) -> kind -> child summary
    children: dict[Key, dict[str, ChildState]] = field(default_factory=lambda: defaultdict(dict))
    pods: dict[Key, PodState] = field(default_factory=dict)
    pods_by_owner: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))
    nodes: dict[str, NodeState] = field(default_factory=dict)

    def set_child(self, owner: Key, child: ChildState) -> None:
        self.children[owner][child.kind] = child

    def drop_child(self, owner: Key, kind: str, name: str) -> None:
        kids = self.children.get(owner)
        if kids and kids.get(kind) and kids[kind].name == name:
            del kids[kind]
            if not kids:
                del self.children[owner]

    def child(self, owner: Key, kind: str) -> ChildState | None:
        kids = self.children.get(owner)
        return kids.get(kind) if kids else None

    def set_pod(self, pod: PodState) -> None:
        key = (pod.namespace, pod.name)
        self.drop_pod(key)
        self.pods[key] = pod
        if pod.instance:
            self.pods_by_owner[(pod.namespace, pod.instance)].add(pod.name)

    def drop_pod(self, key: Key) -> None:
        old = self.pods.pop(key, None)
        if old is not None and old.instance:
            owner = (old.namespace, old.instance)
            names = self.pods_by_owner.get(owner)
            if names is not None:
                names.discard(old.name)
                if not names:
                    del self.pods_by_owner[owner]

    def owned_pods(self, owner: Key) -> list[PodState]:
        return [self.pods[(owner[0], n)] for n in sorted(self.pods_by_owner.get(owner, ()))]
