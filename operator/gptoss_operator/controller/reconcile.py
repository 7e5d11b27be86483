"""Reconcile one object: gather -> decide -> write, for each kind the operator manages.

- gather (``<kind>/gather.py``) reads the store into a frozen value;
- decide (``<kind>/decide.py``) is pure: children to apply or delete, status and events;
- the writer (``write.py``, shared) sends exactly that to the API server.

Writes happen only when something differs: children carry the hash of the manifest they were
applied from, and the status is compared with what is stored before it is patched. A resync
of a converged object therefore sends nothing to the API server. A ModelDeployment's status
that only reports progress may be held for a while (``pacing.py``): the reconcile then returns
when to run it again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gptoss_operator import kinds
from gptoss_operator.controller.desired import Desired, StatusChange
from gptoss_operator.controller.modeldeployment import decide as md_decide
from gptoss_operator.controller.modeldeployment import gather as md_gather
from gptoss_operator.controller.pacing import StatusPacer
from gptoss_operator.controller.ratelimit import WriteLimiter
from gptoss_operator.controller.routepolicy import decide as rp_decide
from gptoss_operator.controller.routepolicy import gather as rp_gather
from gptoss_operator.controller.store import ChildIndex, Key, Store
from gptoss_operator.controller.write import Writer, now
from gptoss_operator.kube import KubeClient
from gptoss_operator.observed import OwnedDigests
from gptoss_operator.settings import OperatorSettings


async def _write(
    kind: kinds.Kind,
    key: Key,
    body: Mapping[str, Any],
    desired: Desired,
    *,
    api: KubeClient,
    bodies: dict[Key, dict[str, Any]],
    children: ChildIndex,
    limiter: WriteLimiter | None,
    gone: dict[tuple[str, str, str], str],
    doomed: set[str],
    digests: OwnedDigests,
) -> None:
    """The shared tail of every kind's reconcile: spend the object's write budget when there is
    something to write, then write exactly ``desired``."""
    if limiter is not None and (desired.writes or desired.status.patch is not None or desired.status.events):
        limiter.take((kind.kind, *key))
    await Writer(api, kind, bodies, children, gone, doomed, digests).write(key, body, desired)


async def reconcile(
    key: Key,
    *,
    api: KubeClient,
    store: Store,
    settings: OperatorSettings,
    limiter: WriteLimiter | None = None,
    pacer: StatusPacer | None = None,
) -> float | None:
    """One ModelDeployment; returns the seconds after which to reconcile it again (a held
    status write, or a status that excuses a wait only until then), or None."""
    gathered = await md_gather.gather(key, store, api)
    if gathered is None:
        if pacer is not None:
            pacer.forget(key)
        return None
    desired = md_decide.decide(gathered, settings, now())
    hold = pacer.hold(key, desired.status) if pacer is not None else None
    if hold is not None:
        desired = dataclasses.replace(desired, status=StatusChange(None, ()))
    await _write(
        kinds.MODEL_DEPLOYMENT, key, gathered.body, desired, api=api,
        bodies=store.model_deployments, children=store.model_deployment_children, limiter=limiter,
        gone=store.gone, doomed=store.doomed, digests=store.owned_digests,
    )  # fmt: skip
    later = [t for t in (hold, desired.recheck_after) if t is not None]
    return min(later) if later else None


async def reconcile_route_policy(
    key: Key,
    *,
    api: KubeClient,
    store: Store,
    settings: OperatorSettings,
    limiter: WriteLimiter | None = None,
) -> None:
    """One RoutePolicy."""
    gathered = await rp_gather.gather(key, store, api)
    if gathered is not None:
        desired = rp_decide.decide(gathered, settings, now())
        await _write(
            kinds.ROUTE_POLICY, key, gathered.body, desired, api=api,
            bodies=store.route_policies, children=store.route_policy_children, limiter=limiter,
            gone=store.gone, doomed=store.doomed, digests=store.owned_digests,
        )  # fmt: skip
