"""Gather: everything one ModelDeployment's reconcile decides from, as one frozen value.

Mostly the store (fed by the watches). The exception is a restart: a ModelDeployment's event
can arrive before its children's, so for an object that converged before (it has status) a
child the decision needs but the store lacks is fetched from the API server, rather than acted
on as if it were missing (re-applying it, or choosing a rollout strategy from half the picture).

An object without status is taken as new and nothing is fetched, so the bulk creation of new
objects costs no GETs. Since status writes are paced (``controller/pacing.py``), an object whose
first status was still held when the operator restarted also has none: its children are then
applied again: the same manifests, which the API server answers without changing anything
(an Auto rollout strategy is chosen again from capacity, which changes no pod template).
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from gptoss_operator import kinds
from gptoss_operator.api.v1alpha1 import ModelDeployment
from gptoss_operator.controller.modeldeployment.gathered import Gathered, expected_children
from gptoss_operator.controller.store import Key, Store
from gptoss_operator.kube import KubeClient
from gptoss_operator.observed import summarize_child, summarize_claim
from gptoss_operator.status import ProvidedVolume
from gptoss_operator.validation_messages import describe_validation_error


async def gather(key: Key, store: Store, api: KubeClient) -> Gathered | None:
    """None when there is nothing to reconcile: the object is gone or being deleted (the
    garbage collector removes its children through their ownerReferences), or its namespace is
    (store.doomed)."""
    body = store.model_deployments.get(key)
    if body is None or store.being_deleted(body):
        return None
    model: ModelDeployment | None = None
    spec_error: str | None = None
    try:
        model = ModelDeployment.model_validate(body)
    except ValidationError as e:
        spec_error = describe_validation_error(e)
    children = dict(store.children.get(key) or {})
    if model is not None and (body.get("status") or {}).get("observedGeneration"):
        missing = [(k, n) for k, n in expected_children(model).items() if k not in children]
        found = await asyncio.gather(
            *(api.get(kinds.BY_KIND[k].api_version, k, key[0], n) for k, n in missing)
        )
        for child in found:
            if child is not None:
                state = summarize_child(child)
                store.set_child(key, state)
                children[state.kind] = state
    volume = await _provided_volume(key[0], model, store, api) if model is not None else None
    return Gathered(
        key=key,
        body=body,
        model=model,
        spec_error=spec_error,
        children=children,
        server_pods=tuple(p for p in store.owned_pods(key) if p.component == "server"),
        nodes=tuple(store.nodes.values()),
        gpus_in_use=store.gpus_in_use(),
        download_pods=tuple(p for p in store.owned_pods(key) if p.component == "download"),
        volume=volume,
    )


async def _provided_volume(
    namespace: str, model: ModelDeployment, store: Store, api: KubeClient
) -> ProvidedVolume | None:
    """The user's claim named by source.persistentVolumeClaim, as the store has it (every claim's
    watch events land there, and requeue the objects that name it).

    A claim the store has not seen is read with a GET: after a restart an object's event can come
    before its claim's, and "not found" would flip a serving object's WeightsReady (and post a
    Warning) for nothing. So only an object whose claim is really missing pays a GET per
    reconcile, and such an object is rarely reconciled: it gets no Deployment (so no pod events)
    until the claim's own ADDED event requeues it.
    """
    source = model.spec.source.persistent_volume_claim
    if source is None:
        return None
    claim = store.claims.get((namespace, source.claim_name))
    if claim is None:
        body = await api.get(kinds.PVC.api_version, kinds.PVC.kind, namespace, source.claim_name)
        if body is not None:
            claim = summarize_claim(body)
            store.claims[(namespace, source.claim_name)] = claim
    return ProvidedVolume(
        claim=source.claim_name,
        path=source.path,
        phase=(claim.phase or "Pending") if claim is not None else None,
        created=claim.created if claim is not None else None,
        provisioner=claim.provisioner if claim is not None else None,
    )
