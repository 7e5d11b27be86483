"""Gather: everything one RoutePolicy's reconcile decides from, as one frozen value.

Referenced ModelDeployments and Secrets come from the store (watched, so a change to either
requeues the policy at once); a ``service`` backend's Service is looked up with a GET (any
Service may be referenced, and watching every Service in the cluster would cost more than a
read per reconcile of a policy). For a policy that converged before a restart, a child missing
from the store is fetched rather than assumed absent.
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from gptoss_operator import kinds
from gptoss_operator.api.routepolicy import RoutePolicy
from gptoss_operator.api.v1alpha1 import CONDITION_READY
from gptoss_operator.controller.routepolicy.gathered import ModelDeploymentView, RoutePolicyGathered
from gptoss_operator.controller.store import Key, Store
from gptoss_operator.kube import KubeClient
from gptoss_operator.manifests.router import router_names
from gptoss_operator.observed import summarize_child
from gptoss_operator.validation_messages import describe_validation_error


def _view(body: dict[str, object]) -> ModelDeploymentView:
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    status = body.get("status") if isinstance(body.get("status"), dict) else {}
    assert isinstance(spec, dict)
    assert isinstance(status, dict)
    ready = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == CONDITION_READY
        ),
        {},
    )
    phase = status.get("phase") or "Pending"
    message = ready.get("message") or "no status yet"
    return ModelDeploymentView(
        served_model=str(spec.get("model", "")),
        ready=ready.get("status") == "True",
        summary=f"{phase}: {message}",
        scaled_to_zero=phase == "ScaledToZero",
    )


async def gather(key: Key, store: Store, api: KubeClient) -> RoutePolicyGathered | None:
    body = store.route_policies.get(key)
    if body is None or store.being_deleted(body):
        return None  # the garbage collector removes the children (ownerReferences)
    namespace, name = key
    policy: RoutePolicy | None = None
    spec_error: str | None = None
    try:
        policy = RoutePolicy.model_validate(body)
    except ValidationError as e:
        spec_error = describe_validation_error(e)
    children = store.route_policy_children.of(key)
    services: set[str] = set()
    if policy is not None:
        wanted = {b.service.name for r in policy.spec.routes for b in r.backends if b.service is not None}
        found = await asyncio.gather(
            *(api.get(kinds.SERVICE.api_version, kinds.SERVICE.kind, namespace, s) for s in sorted(wanted))
        )
        services = {s for s, obj in zip(sorted(wanted), found, strict=True) if obj is not None}
        if (body.get("status") or {}).get("observedGeneration"):
            router = router_names(name)
            expected = {
                kinds.CONFIG_MAP.kind: router.config_map,
                **{k.kind: router.router for k in kinds.ROUTE_POLICY_CHILDREN if k != kinds.CONFIG_MAP},
            }
            if policy.spec.router.replicas <= 1:
                expected.pop(kinds.PDB.kind)
            missing = [(k, n) for k, n in expected.items() if k not in children]
            got = await asyncio.gather(
                *(api.get(kinds.BY_KIND[k].api_version, k, namespace, n) for k, n in missing)
            )
            for child in got:
                if child is not None:
                    state = summarize_child(child)
                    store.route_policy_children.set(key, state)
                    children[state.kind] = state
    refs = store.route_policy_refs.get(key)
    mds = {
        md: _view(store.model_deployments[(namespace, md)])
        for md in (refs.model_deployments if refs else ())
        if (namespace, md) in store.model_deployments
    }
    secrets = {
        s: store.secret_keys[(namespace, s)]
        for s in (refs.secrets if refs else ())
        if (namespace, s) in store.secret_keys
    }
    return RoutePolicyGathered(
        key=key,
        body=body,
        policy=policy,
        spec_error=spec_error,
        children=children,
        model_deployments=mds,
        services=frozenset(services),
        secret_keys=secrets,
    )
