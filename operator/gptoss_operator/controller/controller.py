"""kopf wiring: watch events feed the store and enqueue ModelDeployment keys; workers reconcile.

Handlers are ``async``: kopf runs plain functions in a thread pool, a thread hop (and GIL
hand-over) per watch event for handlers that only update a dict and enqueue a key.

Only ``@kopf.on.event`` handlers are used: they keep no state on the objects (no progress or
diff-base annotations, no finalizers), so kopf itself never writes to the cluster. Children
are deleted by the garbage collector through their ownerReferences, so deleting a
ModelDeployment never waits on this process.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Iterable, Iterator
from typing import Any

import aiohttp
import kopf

from gptoss_operator import credentials, kinds
from gptoss_operator import labels as keys
from gptoss_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from gptoss_operator.controller.pacing import StatusPacer
from gptoss_operator.controller.ratelimit import WriteLimiter, WriteRateLimited
from gptoss_operator.controller.reconcile import reconcile, reconcile_route_policy
from gptoss_operator.controller.store import Key, Store
from gptoss_operator.controller.workqueue import ExpectedFailure, WorkQueue
from gptoss_operator.credentials import Token, TokenSource
from gptoss_operator.kube import Credentials, KubeAPI, KubeError
from gptoss_operator.metrics import OperatorMetrics
from gptoss_operator.observed import (
    secret_key_names,
    summarize_child,
    summarize_claim,
    summarize_node,
    summarize_pod,
)
from gptoss_operator.settings import FIELD_MANAGER, MANAGED_BY, OperatorSettings

log = logging.getLogger(__name__)
MANAGED = {keys.MANAGED_BY: MANAGED_BY}
# Children whose watch is not narrowed to the operator's label by the API server: the same
# stream (kopf opens one per resource) must also bring the user's own claims a ModelDeployment
# loads its weights from (spec.source.persistentVolumeClaim), which carry no label of ours.
UNSELECTED_CHILDREN = (kinds.PVC,)
OWNER_KIND_INFO = (kinds.MODEL_DEPLOYMENT, kinds.ROUTE_POLICY)
OWNER_KINDS = tuple(kind.kind for kind in OWNER_KIND_INFO)
# RoutePolicies are few and their reconciles cheap; a handful of workers keeps one slow policy
# from holding the others.
ROUTE_POLICY_WORKERS = 4
# While the API server is unreachable, the relist is retried this often (not every relist
# period): its first success is what triggers the resync of every object after an outage.
RELIST_RETRY_SECONDS = 2.0
# Longest pause between two attempts to re-open a watch. kopf's default backoffs (1, 1, 2, 3,
# 5, 8, 13, 21 s, then start over) leave a watch shut for up to 21 s after the API server is
# back, and everything that changed meanwhile (pods turned unready, a Deployment scaled) shows
# in status only then.
WATCH_RETRY_MAX_SECONDS = 2.0


def deleted_crd(error: BaseException) -> str | None:
    """The plural of our kind whose CRD was deleted under kopf's watch, if ``error`` (what
    ended ``kopf.operator()``) is that, else None.

    When a CRD is deleted the API server closes its kind's watches and kopf re-opens them at
    once (or lists them again). If that request arrives before kopf's own CRD watch has
    stopped the kind's watcher, it gets 404 Not Found, which kopf (1.45) treats as fatal for
    the whole operator: the race is usually won by the CRD watch, but not on a busy machine. The caller exits with one clear
    line instead of a traceback; the kubelet's restart then watches the kind afresh, as it does
    when liveness fails for a re-created CRD kopf does not watch again.
    """
    cause = error.__cause__
    if getattr(error, "status", None) != 404 or not isinstance(cause, aiohttp.ClientResponseError):
        return None
    parts = cause.request_info.real_url.path.strip("/").split("/")
    if parts[:2] != ["apis", GROUP]:
        return None
    plural = parts[-1]
    return plural if plural in {kind.plural for kind in OWNER_KIND_INFO} else None


class WatchRetryBackoffs:
    """Endless watch-request retry delays for kopf's ``networking.error_backoffs``: 0.5 s, 1 s,
    then every ``WATCH_RETRY_MAX_SECONDS``. kopf iterates it afresh for every request, and an
    iterable without a length is never exhausted (kopf/_cogs/clients/api.py, ``request``)."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((0.5, 1.0), itertools.repeat(WATCH_RETRY_MAX_SECONDS))


class NoDiffBase(kopf.DiffBaseStorage):
    """Keeps no "last handled" essence: this operator has no change-detection handlers.

    kopf deep-copies and diffs every watched body against its diff base on every event, for
    on.create/on.update handlers. With only on.event handlers that work is wasted; at 1,000
    ModelDeployments it was a tenth of the operator's CPU. A test asserts the registry has no
    change handlers, so adding one fails loudly instead of silently never firing.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def connection_info(creds: Credentials, token: Token) -> kopf.ConnectionInfo:
    """kopf's view of our credentials, with the token as it is now and when it expires."""
    return kopf.ConnectionInfo(
        server=creds.server,
        ca_path=creds.ca_path,
        ca_data=creds.ca_data,
        token=token.value,
        certificate_path=creds.certificate_path,
        certificate_data=creds.certificate_data,
        private_key_path=creds.private_key_path,
        private_key_data=creds.private_key_data,
        insecure=creds.insecure,
        expiration=token.expires,
    )


class Controller:
    """Holds the operator's state for one kopf run; ``registry`` carries its handlers.

    Two work queues, one per kind, so a burst of ModelDeployment events never delays a
    RoutePolicy (and the reverse); each key is reconciled by one worker at a time.
    """

    def __init__(self, settings: OperatorSettings, metrics: OperatorMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = Store()
        self.queue: WorkQueue[Key] = WorkQueue()
        self.route_policy_queue: WorkQueue[Key] = WorkQueue()
        self.credentials: Credentials | None = None
        self.api: KubeAPI | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.limiter = WriteLimiter()
        self.pacer = StatusPacer(settings.status_window_seconds, time.monotonic)
        # Set while a relist finds one of our CRDs gone: liveness fails (the kubelet restarts
        # the operator) until the CRD is back *and* kopf's watch of the kind has delivered
        # every object the relist finds. kopf watches CRDs and re-opens a kind's watch when
        # its CRD is created again, but only if API discovery already lists the kind when the
        # CRD's events arrive; often it does not ("Unresolved resources cannot be served") and
        # the watch never comes back. Meanwhile the relist runs every RELIST_RETRY_SECONDS and
        # stands in for the watch, so objects of that kind are still reconciled.
        self.crd_lost: str | None = None
        self._seen_since_lost: set[Key] = set()
        self.relist_ok = True  # False while relists fail (the API server is unreachable)
        self.resyncs = 0  # full resyncs after an outage, for tests and the log
        self.registry = kopf.OperatorRegistry()
        self._register()
        metrics.watch_objects(
            lambda: {
                kinds.MODEL_DEPLOYMENT.kind: list(self.store.model_deployments.values()),
                kinds.ROUTE_POLICY.kind: list(self.store.route_policies.values()),
            }
        )

    def _client(self) -> KubeAPI:
        if self.api is None:
            # kopf runs startup handlers before login; watch events (and so reconciles) only
            # start after login has produced the credentials.
            assert self.credentials is not None, "a reconcile ran before kopf's login"
            self.api = KubeAPI(self.credentials, field_manager=FIELD_MANAGER, registry=self.metrics.registry)
        return self.api

    async def _reconcile(self, key: Key) -> None:
        async def paced() -> None:
            hold = await reconcile(
                key, api=self._client(), store=self.store, settings=self.settings,
                limiter=self.limiter, pacer=self.pacer,
            )  # fmt: skip
            if hold is not None:
                # The held status is written by this later pass (or a settled one overtakes it).
                self.queue.add_after(key, hold, follow_up=True)

        await self._timed(kinds.MODEL_DEPLOYMENT.kind, paced())
        self.metrics.queue_depth.set(len(self.queue))

    async def _reconcile_route_policy(self, key: Key) -> None:
        await self._timed(
            kinds.ROUTE_POLICY.kind,
            reconcile_route_policy(
                key, api=self._client(), store=self.store, settings=self.settings, limiter=self.limiter
            ),
        )

    async def _timed(self, kind: str, work: Awaitable[None]) -> None:
        with self.metrics.reconcile_seconds.labels(kind=kind).time():
            try:
                await work
            except (KubeError, WriteRateLimited) as e:
                self.metrics.reconcile_errors.labels(kind=kind).inc()
                raise ExpectedFailure(str(e)) from e
            except Exception:
                self.metrics.reconcile_errors.labels(kind=kind).inc()
                raise

    def _owner_of(self, body: dict[str, Any]) -> tuple[str, Key] | None:
        meta = body.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") in OWNER_KINDS and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
                return ref["kind"], (meta["namespace"], ref["name"])
        return None

    async def relist(self) -> None:
        """List both kinds and bring the store in line: objects a missed watch event left
        behind are dropped, objects it never delivered are added and reconciled.

        An object is dropped only if it was in the store before the list was sent, so one
        created meanwhile (and delivered by its watch) is never lost to the race."""
        api = self._client()
        views = (
            (kinds.MODEL_DEPLOYMENT, self.store.model_deployments, self.queue),
            (kinds.ROUTE_POLICY, self.store.route_policies, self.route_policy_queue),
        )
        for kind, bodies, queue in views:
            before = set(bodies)
            found: list[dict[str, Any]] = []
            lost = False
            for namespace in self.settings.namespaces or (None,):
                items = await api.list(kind, namespace)
                if items is None:
                    if self.crd_lost is None:
                        log.error(
                            "the %s CRD is gone; failing liveness until it is back and watched",
                            kind.plural,
                        )
                        self._seen_since_lost.clear()
                    self.crd_lost = kind.plural
                    found = [bodies[k] for k in before]
                    lost = True
                    break
                found += items
            listed = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in found}
            if not lost and self.crd_lost == kind.plural and listed and set(listed) <= self._seen_since_lost:
                log.warning("the %s CRD is back and watched again; liveness passes", kind.plural)
                self.crd_lost = None
            for key in before - set(listed):
                log.warning(
                    "%s %s/%s is gone but its deletion was never seen; forgetting it", kind.kind, *key
                )
                queue.forget(key)
                if kind == kinds.ROUTE_POLICY:
                    self.store.drop_route_policy(key)
                else:
                    self.store.drop_model_deployment(key)
                    self._requeue_route_policies(key[0], model_deployment=key[1])
            # Until kopf's watch of a re-created CRD is proven, the relist is the watch: changed
            # objects are taken from it (no watch can race it with a newer version).
            polling = self.crd_lost == kind.plural and not lost
            for tomb in [g for g in self.store.gone if g[0] == kind.kind and (g[1], g[2]) not in listed]:
                del self.store.gone[tomb]  # the list agrees now: no tombstone needed
            for key, body in listed.items():
                known = bodies.get(key)
                if known is None and self.store.gone.get((kind.kind, *key)) == body["metadata"].get("uid"):
                    continue  # a stale list: a write already found this very object gone
                if known is None or (
                    polling
                    and known["metadata"].get("resourceVersion") != body["metadata"].get("resourceVersion")
                ):
                    if kind == kinds.ROUTE_POLICY:
                        self.store.put_route_policy(key, body)
                    else:
                        self.store.put_model_deployment(key, body)
                    queue.add(key)

    async def _relist_forever(self) -> None:
        while True:
            period = self.settings.relist_seconds
            quick = not self.relist_ok or self.crd_lost is not None
            await asyncio.sleep(min(period, RELIST_RETRY_SECONDS) if quick else period)
            try:
                await self.relist()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the API server may be down; the watches say so too
                if self.relist_ok:
                    log.warning("relist failed: %s: %s", type(e).__name__, e)
                self.relist_ok = False
            else:
                if not self.relist_ok:
                    self.resync_all()
                self.relist_ok = True

    def resync_all(self) -> None:
        """Reconcile every object now: the API server was unreachable, and what changed in the
        meantime (pods that turned unready, children deleted) must show in status at once, not
        when each object's next event happens to come. Converged objects write nothing."""
        self.resyncs += 1
        self.metrics.resyncs.inc()
        started = time.monotonic()
        for key in list(self.store.model_deployments):
            self.queue.add(key)
        for key in list(self.store.route_policies):
            self.route_policy_queue.add(key)
        log.warning(
            "the API server answers again; resyncing %d ModelDeployments and %d RoutePolicies (%.3fs)",
            len(self.store.model_deployments),
            len(self.store.route_policies),
            time.monotonic() - started,
        )

    def _requeue_route_policies(
        self, namespace: str, *, model_deployment: str = "", secret: str = ""
    ) -> None:
        for key in self.store.route_policies_referring_to(
            namespace, model_deployment=model_deployment, secret=secret
        ):
            self.route_policy_queue.add(key)

    def _register(self) -> None:
        registry = self.registry

        @kopf.on.login(registry=registry)
        async def login(**_: Any) -> kopf.ConnectionInfo:
            # Our own loading, not kopf's login_with_*: theirs read neither a kubeconfig's
            # tokenFile nor its exec plugins. kopf calls this again on a 401 or at expiration,
            # and each call reads the token afresh (a rotated file, a new exec token).
            if self.credentials is None:
                self.credentials = credentials.load()
            return connection_info(self.credentials, await TokenSource(self.credentials).token())

        @kopf.on.startup(registry=registry)
        async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
            # kopf posts its own log lines as Kubernetes Events by default: writes we don't want.
            settings.posting.enabled = False
            # Our state lives under gptoss.dev/, never kopf's defaults (event handlers persist
            # nothing today; a future change handler must not leak kopf.zalando.org annotations).
            settings.persistence.finalizer = f"{GROUP}/finalizer"
            settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
            settings.persistence.diffbase_storage = NoDiffBase()
            # One writer at a time: a single replica, or the holder of leader.py's Lease (run
            # --leader-elect); kopf's own peering would need its CRDs and more RBAC.
            settings.peering.standalone = True
            # Ask the API server to end each watch after 5 min and reconnect; 410 Gone and
            # silent stalls (nolar/kopf#996, #1276) then heal within minutes, not never.
            settings.watching.server_timeout = 300
            settings.watching.client_timeout = 330
            settings.watching.connect_timeout = 10
            settings.networking.request_timeout = 60
            # Retry a failed watch request forever, at most WATCH_RETRY_MAX_SECONDS apart.
            settings.networking.error_backoffs = WatchRetryBackoffs()
            # Children's watches carry only the operator's own objects: the API server selects them
            # by label, where kopf's handler filter alone would stream every Deployment, Service,
            # ConfigMap, Role... of the cluster here and drop them after parsing. A child that
            # loses the label leaves the selection as a DELETED event, so its owner is reconciled
            # and the label applied again (tests/cluster/test_hand_edits.py).
            selector = keys.selector(MANAGED)
            for child in kinds.CHILDREN:
                if child not in UNSELECTED_CHILDREN:
                    settings.watching.label_selectors[child.group, child.version, child.plural] = selector
            self._workers = [
                asyncio.create_task(self.queue.run_workers(self.settings.workers, self._reconcile)),
                asyncio.create_task(
                    self.route_policy_queue.run_workers(ROUTE_POLICY_WORKERS, self._reconcile_route_policy)
                ),
                asyncio.create_task(self._relist_forever()),
            ]

        @kopf.on.probe(id="watches", registry=registry)
        async def watches(**_: Any) -> str:
            if self.crd_lost is not None:
                raise kopf.PermanentError(
                    f"the {self.crd_lost} CRD is gone, or back but not watched yet; restart to watch it again"
                )
            return "ok"

        @kopf.on.cleanup(registry=registry)
        async def cleanup(**_: Any) -> None:
            for task in self._workers:
                task.cancel()
            if self.api is not None:
                await self.api.aclose()

        @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
        async def model_deployment_event(event: kopf.RawEvent, **_: Any) -> None:
            obj: dict[str, Any] = dict(event["object"])
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if self.crd_lost == PLURAL:
                self._seen_since_lost.add(key)
            if event["type"] == "DELETED":
                self.store.drop_model_deployment(key)
                self.queue.forget(key)
                self.pacer.forget(key)
            else:
                self.store.put_model_deployment(key, obj)
                self.queue.add(key)
            self._requeue_route_policies(key[0], model_deployment=key[1])

        @kopf.on.event(GROUP, VERSION, kinds.ROUTE_POLICY.plural, registry=registry)
        async def route_policy_event(event: kopf.RawEvent, **_: Any) -> None:
            obj: dict[str, Any] = dict(event["object"])
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if self.crd_lost == kinds.ROUTE_POLICY.plural:
                self._seen_since_lost.add(key)
            if event["type"] == "DELETED":
                self.store.drop_route_policy(key)
                self.route_policy_queue.forget(key)
                return
            self.store.put_route_policy(key, obj)
            self.route_policy_queue.add(key)

        @kopf.on.event("", "v1", kinds.SECRET.plural, registry=registry)
        async def secret_event(event: kopf.RawEvent, **_: Any) -> None:
            # Only the names of a Secret's keys are kept, never their values.
            meta = event["object"]["metadata"]
            key = (meta["namespace"], meta["name"])
            if event["type"] == "DELETED":
                self.store.secret_keys.pop(key, None)
            else:
                self.store.secret_keys[key] = secret_key_names(event["object"])
            self._requeue_route_policies(key[0], secret=key[1])

        for child in kinds.CHILDREN:

            @kopf.on.event(child.group, child.version, child.plural, labels=MANAGED, registry=registry)
            async def child_event(event: kopf.RawEvent, **_: Any) -> None:
                obj: dict[str, Any] = dict(event["object"])
                found = self._owner_of(obj)
                if found is None:
                    return
                owner_kind, owner = found
                if owner_kind == kinds.ROUTE_POLICY.kind:
                    index, queue = self.store.route_policy_children, self.route_policy_queue
                else:
                    index, queue = self.store.model_deployment_children, self.queue
                if event["type"] == "DELETED":
                    index.drop(owner, obj["kind"], obj["metadata"]["name"])
                    self.store.owned_digests.forget(obj["metadata"].get("uid", ""))
                else:
                    index.set(owner, summarize_child(obj, self.store.owned_digests))
                queue.add(owner, follow_up=True)

        @kopf.on.event("", "v1", kinds.PVC.plural, registry=registry)
        async def claim_event(event: kopf.RawEvent, **_: Any) -> None:
            # Any claim, labelled or not: one a ModelDeployment loads its weights from
            # (source.persistentVolumeClaim) is the user's. The same watch stream as the managed
            # children's handler above (kopf opens one per resource), so no extra API traffic.
            obj = event["object"]
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if event["type"] == "DELETED":
                changed = self.store.claims.pop(key, None) is not None
            else:
                claim = summarize_claim(obj)
                changed = self.store.claims.get(key) != claim
                self.store.claims[key] = claim
            if changed:
                for owner in self.store.model_deployments_using_claim(*key):
                    self.queue.add(owner)

        @kopf.on.event("", "v1", "pods", registry=registry)
        async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
            obj = event["object"]
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if event["type"] == "DELETED":
                old = self.store.pods.get(key)
                self.store.drop_pod(key)
                if old is not None and old.instance:
                    self.queue.add((old.namespace, old.instance), follow_up=True)
                return
            pod = summarize_pod(obj, MANAGED_BY)
            if not (pod.managed or pod.gpus):
                self.store.drop_pod(key)  # neither ours nor using GPUs: not worth remembering
                return
            previous = self.store.pods.get(key)
            self.store.set_pod(pod)
            if pod.instance and pod != previous:
                self.queue.add((pod.namespace, pod.instance), follow_up=True)

        @kopf.on.event("", "v1", "nodes", registry=registry)
        async def node_event(event: kopf.RawEvent, **_: Any) -> None:
            obj = event["object"]
            if event["type"] == "DELETED":
                self.store.nodes.pop(obj["metadata"]["name"], None)
            else:
                self.store.nodes[obj["metadata"]["name"]] = summarize_node(obj)
