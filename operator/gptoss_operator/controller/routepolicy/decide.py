"""Decide: what one RoutePolicy's children and status should be (pure, no I/O).

| condition | True | False |
| --- | --- | --- |
| Ready | Serving (router pods ready, every route has a ready backend) | InvalidSpec, ScaledToZero, RouterStarting, NoReadyBackend, ApplyFailed |
| Degraded | InvalidSpec, ApplyFailed, or an unready backend's reason (ModelDeploymentNotFound, ServiceNotFound, SecretNotFound, SecretKeyMissing before ModelDeploymentNotReady before ModelDeploymentScaledToZero) | AsExpected |

A backend that is not ready makes the policy Degraded, not unready: the router keeps serving
each route from its other backends (fallback), which Ready says.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from gptoss_operator import kinds
from gptoss_operator.api.routepolicy import CONDITION_DEGRADED, CONDITION_READY, Backend, RoutePolicy
from gptoss_operator.api.v1alpha1 import ready_text
from gptoss_operator.controller.desired import Apply, Delete, Desired, StatusChange, Write, status_patch
from gptoss_operator.controller.routepolicy.gathered import RoutePolicyGathered
from gptoss_operator.manifests import router as manifests
from gptoss_operator.observed import ChildState, DeploymentState, needs_apply
from gptoss_operator.settings import OperatorSettings
from gptoss_operator.status import Event, set_conditions

JSON = dict[str, Any]
CONDITION_ORDER = (CONDITION_READY, CONDITION_DEGRADED)


# Which children go out together, step by step (each step waits for the one before). The
# RoleBinding waits for its Role: binding a Role is refused unless the writer holds every
# permission in it or may `bind` it, and the API server checks that against the Role itself,
# which it cannot find while the Role's own apply is still in flight (the operator's service
# account has no `bind`; a cluster admin's writes skip the check, which is why only the chart's
# identity saw `rolebindings ... not found`). Kubernetes docs, "Restrictions on role binding
# creation or update": https://kubernetes.io/docs/reference/access-authn-authz/rbac/#restrictions-on-role-binding-creation-or-update
WRITE_STEPS: tuple[frozenset[str], ...] = (
    frozenset({kinds.SERVICE_ACCOUNT.kind, kinds.ROLE.kind, kinds.CONFIG_MAP.kind}),
    frozenset({kinds.ROLE_BINDING.kind}),
    frozenset({kinds.DEPLOYMENT.kind, kinds.SERVICE.kind, kinds.PDB.kind}),
)


def _step_of(kind: str) -> int:
    return next(i for i, kinds_ in enumerate(WRITE_STEPS) if kind in kinds_)


def desired_children(
    policy: RoutePolicy, served_models: Mapping[str, str], settings: OperatorSettings
) -> list[JSON]:
    """Every child manifest, in the order they may be written: what the router needs before it
    starts (its identity, permissions, configuration), then the Deployment and Service.
    :data:`WRITE_STEPS` says which of them may go out together."""
    out = [
        manifests.service_account(policy),
        manifests.role(policy),
        manifests.role_binding(policy),
        manifests.config_map(policy, manifests.router_config(policy, served_models)),
        manifests.deployment(policy, settings),
        manifests.service(policy),
    ]
    budget = manifests.disruption_budget(policy)
    if budget is not None:
        out.append(budget)
    return out


def decide(g: RoutePolicyGathered, settings: OperatorSettings, now: str) -> Desired:
    generation = int(g.body["metadata"].get("generation", 1))
    if g.policy is None:
        reason, message = "InvalidSpec", g.spec_error or "the spec does not parse"
        status = _status(g, generation, now, (False, reason, message), (True, reason, message), [], None)
        return Desired(steps=(), status=status, on_write_failure=lambda _: StatusChange(None, ()))
    policy = g.policy
    served = {name: view.served_model for name, view in g.model_deployments.items()}
    steps: tuple[list[Write], ...] = tuple([] for _ in WRITE_STEPS)
    for manifest in desired_children(policy, served, settings):
        if needs_apply(g.children.get(manifest["kind"]), manifest):
            steps[_step_of(manifest["kind"])].append(Apply(manifest))
    if policy.spec.router.replicas <= 1 and kinds.PDB.kind in g.children:
        steps[_step_of(kinds.PDB.kind)].append(Delete(kinds.PDB.kind, g.children[kinds.PDB.kind].name))
    backends = [backend_status(route.model, b, g) for route in policy.spec.routes for b in route.backends]
    endpoint = settings.endpoint(
        manifests.router_names(policy.metadata["name"]).router, g.key[0], port=policy.spec.router.port
    )
    ready = _ready(policy, g.children.get(kinds.DEPLOYMENT.kind), backends)
    degraded = _degraded(backends)
    status = _status(g, generation, now, ready, degraded, backends, endpoint, len(policy.spec.routes))
    ordered = tuple(tuple(step) for step in steps if step)

    def failed(error: str) -> StatusChange:
        reason = "ApplyFailed"
        return _status(
            g,
            generation,
            now,
            (False, reason, error),
            (True, reason, error),
            backends,
            endpoint,
            len(policy.spec.routes),
        )

    return Desired(steps=ordered, status=status, on_write_failure=functools.partial(failed))


def backend_status(route: str, backend: Backend, g: RoutePolicyGathered) -> JSON:
    """One entry of ``status.backends``: ready, or the reason it cannot take requests."""

    def not_ready(reason: str, message: str) -> JSON:
        return {"route": route, "name": backend.name, "ready": False, "reason": reason, "message": message}

    if backend.model_deployment is not None:
        name = backend.model_deployment.name
        view = g.model_deployments.get(name)
        if view is None:
            return not_ready("ModelDeploymentNotFound", f"ModelDeployment {name} not found in {g.key[0]}")
        if not view.ready and view.scaled_to_zero:
            return not_ready(
                "ModelDeploymentScaledToZero", f"ModelDeployment {name} is scaled to zero ({view.summary})"
            )
        if not view.ready:
            return not_ready(
                "ModelDeploymentNotReady", f"ModelDeployment {name} is not ready ({view.summary})"
            )
    elif backend.service is not None:
        if backend.service.name not in g.services:
            return not_ready("ServiceNotFound", f"Service {backend.service.name} not found in {g.key[0]}")
    elif backend.external is not None and backend.external.api_key_secret_ref is not None:
        ref = backend.external.api_key_secret_ref
        present = g.secret_keys.get(ref.name)
        if present is None:
            return not_ready(
                "SecretNotFound", f"Secret {ref.name} (the API key of {backend.name}) not found in {g.key[0]}"
            )
        if ref.key not in present:
            return not_ready(
                "SecretKeyMissing",
                f"Secret {ref.name} has no key {ref.key!r} (the API key of {backend.name})",
            )
    return {"route": route, "name": backend.name, "ready": True}


# ---------------------------------------------------------------------------- helpers

Verdict = tuple[bool, str, str]  # status, reason, message


def _ready(policy: RoutePolicy, router: ChildState | None, backends: Sequence[JSON]) -> Verdict:
    want = policy.spec.router.replicas
    if want == 0:
        return False, "ScaledToZero", "spec.router.replicas is 0: no router pods run"
    ready = router.ready_replicas if isinstance(router, DeploymentState) else 0
    if ready == 0:
        return False, "RouterStarting", f"0/{want} router pods ready"
    for route in policy.spec.routes:
        if not any(b["ready"] for b in backends if b["route"] == route.model):
            return False, "NoReadyBackend", f"route {route.model} has no ready backend"
    return True, "Serving", f"{ready}/{want} router pods serve {len(policy.spec.routes)} routes"


# Backend reasons that wait for a model rather than for someone to fix something, in the order
# they yield the Degraded reason to others: a backend that needs a hand (a missing Secret) names
# the condition even when another one's model is only starting or scaled to zero, so health
# checks (deploy/argocd/health/routepolicy.lua) do not read a broken policy as on its way.
_WAITING = {"ModelDeploymentNotReady": 1, "ModelDeploymentScaledToZero": 2}


def _degraded(backends: Sequence[JSON]) -> Verdict:
    bad = sorted((b for b in backends if not b["ready"]), key=lambda b: _WAITING.get(b["reason"], 0))
    if not bad:
        return False, "AsExpected", f"all {len(backends)} backends are ready"
    first = bad[0]
    more = f" (and {len(bad) - 1} more backends not ready)" if len(bad) > 1 else ""
    return (
        True,
        first["reason"],
        f"backend {first['name']} of route {first['route']}: {first['message']}{more}",
    )


def _status(
    g: RoutePolicyGathered,
    generation: int,
    now: str,
    ready: Verdict,
    degraded: Verdict,
    backends: Sequence[JSON],
    endpoint: str | None,
    routes: int | None = None,
) -> StatusChange:
    current = g.body.get("status") or {}
    previous = current.get("conditions") or []
    before = {c.get("type"): c for c in previous}
    verdicts = list(zip(CONDITION_ORDER, (ready, degraded), strict=True))
    conditions = set_conditions(
        previous,
        [
            {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message}
            for type_, (ok, reason, message) in verdicts
        ],
        generation,
        now,
    )
    events: list[Event] = []
    for type_, (ok, reason, message) in verdicts:
        status = "True" if ok else "False"
        old = before.get(type_)
        # Events for transitions someone may act on: not for a new policy that is "not ready
        # yet" or "not degraded".
        if old is None and not ok:
            continue
        if old is not None and (old.get("status"), old.get("reason")) == (status, reason):
            continue
        warning = (type_ == CONDITION_DEGRADED) == ok
        events.append(
            Event(
                "Warning" if warning else "Normal", reason, f"{type_}: {message or type_ + ' is ' + status}"
            )
        )
    new: JSON = {
        "observedGeneration": generation,
        "conditions": conditions,
        "backends": [dict(b) for b in backends],
        "endpoint": endpoint,
        "routeCount": routes,
        "readyText": ready_text(sum(1 for b in backends if b["ready"]), len(backends)) if backends else None,
    }
    new = {k: v for k, v in new.items() if v is not None}
    return StatusChange(status_patch(current, new), tuple(events))
