"""Reconcile one ModelDeployment: gather -> decide -> write.

- ``gather`` (controller/gather.py) reads the store into a frozen :class:`Gathered`;
- ``decide`` (controller/decide.py) is pure: children to apply or delete, rollout, the weight
  cache's step, status and events;
- ``Writer`` (controller/write.py) sends exactly that to the API server.

Writes happen only when something differs: children carry the hash of the manifest they were
applied from, and the status is compared with what is stored before it is patched. A resync
of a converged object therefore sends nothing to the API server.
"""

from __future__ import annotations

from gptoss_operator.controller.decide import decide
from gptoss_operator.controller.gather import gather
from gptoss_operator.controller.store import Key, Store
from gptoss_operator.controller.write import Writer, now
from gptoss_operator.kube import KubeClient
from gptoss_operator.settings import OperatorSettings


async def reconcile(key: Key, *, api: KubeClient, store: Store, settings: OperatorSettings) -> None:
    gathered = await gather(key, store, api)
    if gathered is None:
        return
    desired = decide(gathered, settings, now())
    await Writer(api, store).write(gathered, desired)
