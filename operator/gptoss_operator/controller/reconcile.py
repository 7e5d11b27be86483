"""Reconcile one object: gather -> decide -> write, for each kind the operator manages.

- gather (``<kind>/gather.py``) reads the store into a frozen value;
- decide (``<kind>/decide.py``) is pure: children to apply or delete, status and events;
- the writer (``write.py``, shared) sends exactly that to the API server.

Writes happen only when something differs: children carry the hash of the manifest they were
applied from, and the status is compared with what is stored before it is patched. A resync
of a converged object therefore sends nothing to the API server.
"""

from __future__ import annotations

from gptoss_operator import kinds
from gptoss_operator.controller.modeldeployment import decide as md_decide
from gptoss_operator.controller.modeldeployment import gather as md_gather
from gptoss_operator.controller.routepolicy import decide as rp_decide
from gptoss_operator.controller.routepolicy import gather as rp_gather
from gptoss_operator.controller.store import Key, Store
from gptoss_operator.controller.write import Writer, now
from gptoss_operator.kube import KubeClient
from gptoss_operator.settings import OperatorSettings


async def reconcile(key: Key, *, api: KubeClient, store: Store, settings: OperatorSettings) -> None:
    """One ModelDeployment."""
    gathered = await md_gather.gather(key, store, api)
    if gathered is None:
        return
    desired = md_decide.decide(gathered, settings, now())
    writer = Writer(api, kinds.MODEL_DEPLOYMENT, store.model_deployments, store.model_deployment_children)
    await writer.write(key, gathered.body, desired)


async def reconcile_route_policy(
    key: Key, *, api: KubeClient, store: Store, settings: OperatorSettings
) -> None:
    """One RoutePolicy."""
    gathered = await rp_gather.gather(key, store, api)
    if gathered is None:
        return
    desired = rp_decide.decide(gathered, settings, now())
    writer = Writer(api, kinds.ROUTE_POLICY, store.route_policies, store.route_policy_children)
    await writer.write(key, gathered.body, desired)
