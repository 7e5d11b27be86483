"""Write: carry out a :class:`Desired` against the API server, and nothing else (any kind).

Children go out with server-side apply under the operator's one field manager (kube.py);
status is merge-patched only when it changed; events are best effort. What the API server
returns is fed back into the store, so the next gather starts from it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from gptoss_operator import kinds
from gptoss_operator.controller.desired import Apply, Delete, Desired, StatusChange, Write
from gptoss_operator.controller.store import ChildIndex, Key
from gptoss_operator.kube import KubeClient, KubeError
from gptoss_operator.observed import OwnedDigests, summarize_child
from gptoss_operator.status import Event

log = logging.getLogger(__name__)
COMPONENT = "gptoss-operator"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Writer:
    """Writes for objects of ``kind``; ``bodies``, ``children``, ``gone`` (tombstones of objects a
    write found deleted) and ``doomed`` (uids in namespaces a write found terminating) are the
    store's views of them. ``digests``: the store's memo of owned-field digests. A child is
    summarized from the apply response through it, so the watch event that follows with the same
    object finds its digest already computed."""

    def __init__(
        self,
        api: KubeClient,
        kind: kinds.Kind,
        bodies: dict[Key, dict[str, Any]],
        children: ChildIndex,
        gone: dict[tuple[str, str, str], str],
        doomed: set[str],
        digests: OwnedDigests,
    ) -> None:
        self.api = api
        self.digests = digests
        self.kind = kind
        self.bodies = bodies
        self.children = children
        self.gone = gone
        self.doomed = doomed

    async def write(self, key: Key, body: Mapping[str, Any], desired: Desired) -> None:
        namespace, name = key
        try:
            for step in desired.steps:
                results = await asyncio.gather(*(self._one(key, w) for w in step), return_exceptions=True)
                failures = [r for r in results if isinstance(r, BaseException)]
                if failures:
                    raise failures[0]
        except KubeError as e:
            if e.namespace_terminating:
                # The namespace controller is deleting everything in it, this object included:
                # recreating children would only be refused again. Nothing of this kind in that
                # namespace is reconciled any more (store.doomed); their deletion events end this.
                uids = {
                    (b.get("metadata") or {}).get("uid")
                    for (ns, _), b in self.bodies.items()
                    if ns == namespace
                }
                self.doomed.update(uid for uid in uids if uid)
                log.info(
                    "namespace %s is terminating: its %d %s objects are left to the namespace controller",
                    namespace,
                    len(uids),
                    self.kind.kind,
                )
                return
            log.warning("applying children of %s %s/%s failed: %s", self.kind.kind, namespace, name, e)
            await self.write_status(key, body, desired.on_write_failure(str(e)))
            raise KubeError(0, str(e)) from e  # the work queue retries with a delay
        await self.write_status(key, body, desired.status)

    async def _one(self, owner: Key, write: Write) -> None:
        if isinstance(write, Apply):
            applied = await self.api.apply(write.manifest)
            self.children.set(owner, summarize_child(applied, self.digests))
        elif isinstance(write, Delete):
            kind = kinds.BY_KIND[write.kind]
            await self.api.delete(kind.api_version, kind.kind, owner[0], write.name)
            self.children.drop(owner, write.kind, write.name)

    async def write_status(self, key: Key, body: Mapping[str, Any], change: StatusChange) -> None:
        if change.patch is not None:
            try:
                updated = await self.api.patch_status(
                    self.kind.api_version, self.kind.kind, key[0], key[1], change.patch
                )
            except KubeError as e:
                if e.not_found:
                    # The object is gone, perhaps deleted while a watch was reconnecting (its
                    # DELETED event never came): stop all work for it, or every event of a
                    # child the garbage collector removes would bring the children back.
                    log.info("%s %s/%s is gone; forgetting it", self.kind.kind, key[0], key[1])
                    uid = (body.get("metadata") or {}).get("uid")
                    if uid:
                        self.gone[(self.kind.kind, *key)] = uid
                    self.bodies.pop(key, None)
                    self.children.by_owner.pop(key, None)
                    return
                raise
            if key in self.bodies and updated:
                self.bodies[key] = updated
        await asyncio.gather(*(self._record(body, event) for event in change.events))

    async def _record(self, body: Mapping[str, Any], event: Event) -> None:
        meta = body["metadata"]
        log.info(
            "event %s %s/%s %s %s: %s",
            self.kind.kind,
            meta["namespace"],
            meta["name"],
            event.type,
            event.reason,
            event.message,
        )
        try:
            await self.api.event(
                dict(body), type_=event.type, reason=event.reason, message=event.message, component=COMPONENT
            )
        except KubeError as e:  # an event is best effort; status already says it
            if not e.namespace_terminating:
                log.warning(
                    "could not record event %s on %s/%s: %s", event.reason, meta["namespace"], meta["name"], e
                )
