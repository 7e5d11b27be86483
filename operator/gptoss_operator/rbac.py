"""The permissions the operator needs, in one place: docs/operator.md's table, the cluster test
that runs the operator under exactly these rules, and any packaging (a Helm chart's ClusterRole)
are generated from :data:`RULES`. Pure data, no Kubernetes client.

Two modes, as ``gptoss-operator run`` has them:

- cluster-wide (no ``--namespace``): one ClusterRole with every rule (:func:`cluster_role_rules`);
- namespaced (``--namespace`` ...): a Role in each watched namespace with the namespaced rules
  (:func:`namespace_role_rules`), plus a ClusterRole with the rules on cluster-scoped resources
  (``cluster_role_rules(namespaced=True)``: nodes, CustomResourceDefinitions and namespaces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gptoss_operator import kinds
from gptoss_operator.api.v1alpha1 import GROUP

READ: Final = ("get", "list", "watch")
# Server-side apply of an object that does not exist yet is a create; of one that does, a patch.
MANAGE: Final = ("get", "list", "watch", "create", "patch", "delete")


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule, and why the operator needs it."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    cluster_scoped: bool = False  # the resources are cluster-scoped: a ClusterRole even when namespaced
    namespaced_mode_only: bool = False  # needed only with --namespace

    def manifest(self) -> dict[str, Any]:
        return {"apiGroups": [self.api_group], "resources": list(self.resources), "verbs": list(self.verbs)}


def _resources(*ks: kinds.Kind) -> tuple[str, ...]:
    return tuple(k.plural for k in ks)


def _group(k: kinds.Kind) -> str:
    return k.group


RULES: Final[tuple[Rule, ...]] = (
    Rule(
        GROUP,
        (kinds.MODEL_DEPLOYMENT.plural, kinds.ROUTE_POLICY.plural),
        READ,
        "the objects it reconciles (kopf watches them)",
    ),
    Rule(
        GROUP,
        (f"{kinds.MODEL_DEPLOYMENT.plural}/status", f"{kinds.ROUTE_POLICY.plural}/status"),
        ("patch",),
        "status is a merge patch of the status subresource",
    ),
    Rule(
        "apiextensions.k8s.io",
        ("customresourcedefinitions",),
        READ,
        "kopf discovers the CRDs it serves before watching them; without it kopf logs "
        "APIForbiddenError on customresourcedefinitions and warns it cannot watch",
        cluster_scoped=True,
    ),
    Rule(_group(kinds.DEPLOYMENT), _resources(kinds.DEPLOYMENT), MANAGE, "the vLLM and router Deployments"),
    Rule(
        "",
        _resources(kinds.SERVICE, kinds.PVC, kinds.CONFIG_MAP, kinds.SERVICE_ACCOUNT),
        MANAGE,
        "Services; the weight cache's PVC; the router's ConfigMap and ServiceAccount",
    ),
    Rule(_group(kinds.PDB), _resources(kinds.PDB), MANAGE, "PodDisruptionBudgets at replicas > 1"),
    Rule(_group(kinds.JOB), _resources(kinds.JOB), MANAGE, "the weight cache's download Job"),
    Rule(
        _group(kinds.ROLE),
        _resources(kinds.ROLE, kinds.ROLE_BINDING),
        MANAGE,
        "the router's Role and RoleBinding (EndpointSlice reads in its namespace)",
    ),
    Rule(
        "discovery.k8s.io",
        ("endpointslices",),
        READ,
        "Kubernetes lets it grant the router's Role only what it holds itself",
    ),
    Rule("", _resources(kinds.EVENT), ("create",), "events on its objects"),
    Rule(
        "",
        ("pods",),
        ("list", "watch"),
        "GPU requests per node (rollout Auto) and why pods are unschedulable or failing (status)",
    ),
    Rule(
        "",
        ("nodes",),
        ("list", "watch"),
        "GPU capacity of matching nodes (rollout Auto)",
        cluster_scoped=True,
    ),
    Rule(
        "",
        ("namespaces",),
        ("list", "watch"),
        "kopf follows the watched namespaces appearing and disappearing "
        "(without it kopf logs APIForbiddenError on namespaces)",
        cluster_scoped=True,
        namespaced_mode_only=True,
    ),
    Rule(
        "",
        _resources(kinds.SECRET),
        ("list", "watch"),
        "whether a RoutePolicy's key Secret and key exist: only key names are kept, never a value",
    ),
)


def cluster_role_rules(namespaced: bool = False) -> list[dict[str, Any]]:
    """The ClusterRole's rules: every rule, or with ``namespaced`` the cluster-scoped ones only."""
    if namespaced:
        return [r.manifest() for r in RULES if r.cluster_scoped]
    return [r.manifest() for r in RULES if not r.namespaced_mode_only]


def namespace_role_rules() -> list[dict[str, Any]]:
    """A Role's rules for each namespace the operator watches (namespaced mode)."""
    return [r.manifest() for r in RULES if not r.cluster_scoped]


def markdown_table() -> str:
    """The permissions table in docs/operator.md (a unit test keeps the doc equal to it)."""
    lines = ["| API group | resources | verbs | scope | why |", "| --- | --- | --- | --- | --- |"]
    for r in RULES:
        group = f"`{r.api_group}`" if r.api_group else 'core (`""`)'
        resources = ", ".join(f"`{x}`" for x in r.resources)
        scope = "cluster" if r.cluster_scoped else "namespace"
        if r.namespaced_mode_only:
            scope += ", `--namespace` only"
        lines.append(f"| {group} | {resources} | {'/'.join(r.verbs)} | {scope} | {r.why} |")
    return "\n".join(lines) + "\n"
