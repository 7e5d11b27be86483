"""Missed deletions, lost CRDs and write storms, without a cluster (the in-memory API)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sized
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from kopf._cogs.clients import errors as kopf_errors

from gptoss_operator.commands.run import run_until_stopped
from gptoss_operator.controller.controller import Controller, WatchRetryBackoffs, deleted_crd
from gptoss_operator.controller.ratelimit import WriteLimiter, WriteRateLimited
from gptoss_operator.controller.reconcile import reconcile
from gptoss_operator.controller.store import Store
from gptoss_operator.kube import KubeError
from gptoss_operator.metrics import OperatorMetrics
from gptoss_operator.settings import OperatorSettings
from tests.support.fake_kube import FakeKubeAPI

SETTINGS = OperatorSettings()


def md(name: str, namespace: str = "llm") -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}", "generation": 1},
        "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}},
    }


def controller_with(api: FakeKubeAPI) -> Controller:
    c = Controller(SETTINGS, OperatorMetrics())
    c.api = api  # type: ignore[assignment]
    return c


async def test_an_object_deleted_behind_the_watchs_back_stops_all_work() -> None:
    api, store = FakeKubeAPI(), Store()
    store.model_deployments[("llm", "m")] = md("m")  # never in the API server: its deletion was missed
    await reconcile(("llm", "m"), api=api, store=store, settings=SETTINGS)
    assert ("llm", "m") not in store.model_deployments  # the 404 on status made it forget
    writes = len(api.writes)
    await reconcile(("llm", "m"), api=api, store=store, settings=SETTINGS)  # e.g. a child's GC event
    assert len(api.writes) == writes


async def test_relist_drops_what_is_gone_and_adds_what_was_never_seen() -> None:
    api = FakeKubeAPI()
    api.put(md("kept"))
    api.put(md("new"))
    c = controller_with(api)
    c.store.model_deployments[("llm", "kept")] = md("kept")
    c.store.model_deployments[("llm", "gone")] = md("gone")
    await c.relist()
    assert set(c.store.model_deployments) == {("llm", "kept"), ("llm", "new")}
    assert len(c.queue) == 1  # only the new one needs a reconcile
    assert c.crd_lost is None


class StaleListAPI(FakeKubeAPI):
    """An API server whose LIST still returns objects its GETs and PATCHes no longer find (a
    watch cache that fell behind after its storage went away)."""

    stale: list[dict[str, Any]]

    async def list(self, kind: Any, namespace: str | None = None) -> list[dict[str, Any]] | None:
        listed = await super().list(kind, namespace)
        extra = [o for o in self.stale if o["kind"] == kind.kind] if listed is not None else []
        return None if listed is None else listed + extra


async def test_a_stale_list_does_not_bring_back_an_object_a_write_found_gone() -> None:
    api = StaleListAPI()
    api.stale = [md("gone")]
    c = controller_with(api)
    await c.relist()
    key = ("llm", "gone")
    assert key in c.store.model_deployments  # first seen: it may well exist
    await reconcile(key, api=api, store=c.store, settings=SETTINGS)  # its status patch: 404
    assert key not in c.store.model_deployments
    writes = len(api.writes)
    for _ in range(3):  # every relist while the list is stale
        await c.relist()
        assert key not in c.store.model_deployments
        while len(c.queue):
            queued = await c.queue.get()
            await reconcile(queued, api=api, store=c.store, settings=SETTINGS)
            c.queue.done(queued)
    assert len(api.writes) == writes, api.writes[writes:]
    # The list catches up: the tombstone goes, and an object re-created under the name (a new
    # uid) is taken again.
    api.stale = []
    await c.relist()
    assert not c.store.gone
    api.put({**md("gone"), "metadata": {**md("gone")["metadata"], "uid": "u-new"}})
    await c.relist()
    assert key in c.store.model_deployments


async def test_a_deleted_crd_fails_liveness_and_forgets_nothing_early() -> None:
    api = FakeKubeAPI(missing_kinds={"ModelDeployment"})
    c = controller_with(api)
    c.store.model_deployments[("llm", "m")] = md("m")
    await c.relist()
    assert c.crd_lost == "modeldeployments"
    assert ("llm", "m") in c.store.model_deployments


def test_the_write_budget_allows_a_burst_then_one_per_refill() -> None:
    now = [0.0]
    limiter = WriteLimiter(burst=3, refill_seconds=2.0, clock=lambda: now[0])
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(WriteRateLimited):
        limiter.take("k")
    limiter.take("other")  # per key
    now[0] = 2.0
    limiter.take("k")
    with pytest.raises(WriteRateLimited):
        limiter.take("k")


async def test_a_loop_that_keeps_undoing_the_operator_is_throttled() -> None:
    api, store = FakeKubeAPI(), Store()
    api.put(md("m"))
    store.model_deployments[("llm", "m")] = md("m")
    limiter = WriteLimiter(burst=5, refill_seconds=60)
    limited = 0
    for _ in range(50):
        for key in [k for k in api.objects if k[0] != "ModelDeployment"]:
            del api.objects[key]  # something keeps deleting the children
        store.model_deployment_children.by_owner.pop(("llm", "m"), None)
        try:
            await reconcile(("llm", "m"), api=api, store=store, settings=SETTINGS, limiter=limiter)
        except WriteRateLimited:
            limited += 1
    assert limited == 45
    assert len([w for w in api.writes if w[0] == "apply"]) == 2 * 5  # Deployment + Service, 5 times


async def test_a_recreated_crd_passes_liveness_once_its_watch_delivers_every_object() -> None:
    api = FakeKubeAPI(missing_kinds={"ModelDeployment"})
    c = controller_with(api)
    await c.relist()
    assert c.crd_lost == "modeldeployments"
    api.missing_kinds.clear()
    api.put(md("m"))
    await c.relist()  # the CRD is back, but no watch event proves kopf watches it again
    assert c.crd_lost == "modeldeployments"
    await _deliver(c, "ADDED", md("m"))
    await c.relist()
    assert c.crd_lost is None


async def test_a_recreated_crd_without_objects_keeps_failing_liveness() -> None:
    # Nothing can prove the watch is back, so a restart (which re-opens every watch) is safer.
    api = FakeKubeAPI(missing_kinds={"ModelDeployment"})
    c = controller_with(api)
    await c.relist()
    api.missing_kinds.clear()
    await c.relist()
    assert c.crd_lost == "modeldeployments"


def test_watch_requests_are_retried_forever_at_most_two_seconds_apart() -> None:
    delays = list(itertools.islice(iter(WatchRetryBackoffs()), 1000))
    assert len(delays) == 1000
    assert max(delays) <= 2.0
    assert not isinstance(WatchRetryBackoffs(), Sized)  # kopf would count it and give up


async def test_the_first_relist_after_an_outage_resyncs_every_object() -> None:
    api = FakeKubeAPI()
    for name in ("a", "b", "c"):
        api.put(md(name))
    c = controller_with(api)
    await c.relist()
    while len(c.queue):
        c.queue.done(await c.queue.get())
    c.relist_ok = False  # relists failed while the API server was down
    task = asyncio.create_task(c._relist_forever())
    try:
        await asyncio.wait_for(_until(lambda: c.resyncs == 1), timeout=5)
    finally:
        task.cancel()
    assert len(c.queue) == 3
    assert c.relist_ok


async def _until(done: Callable[[], bool]) -> None:
    while not done():
        await asyncio.sleep(0.05)


async def _deliver(c: Controller, type_: str, body: dict[str, Any]) -> None:
    """Hand a watch event to the operator's ModelDeployment handler, as kopf would."""
    handler = next(
        h for h in c.registry._watching.get_all_handlers() if str(h.id).endswith("model_deployment_event")
    )
    fn: Any = handler.fn
    await fn(event={"type": type_, "object": body})


async def test_while_a_recreated_crd_is_not_watched_the_relist_stands_in_for_the_watch() -> None:
    api = FakeKubeAPI(missing_kinds={"ModelDeployment"})
    c = controller_with(api)
    await c.relist()
    api.missing_kinds.clear()
    old = md("m") | {"metadata": md("m")["metadata"] | {"resourceVersion": "1"}}
    api.put(old)
    await c.relist()
    c.queue.done(await c.queue.get())
    new = old | {
        "metadata": old["metadata"] | {"resourceVersion": "2"},
        "spec": old["spec"] | {"replicas": 3},
    }
    api.put(new)
    await c.relist()  # no watch event came: the relist takes the change
    assert c.store.model_deployments[("llm", "m")]["spec"]["replicas"] == 3
    assert len(c.queue) == 1


@contextlib.asynccontextmanager
async def not_found_server() -> AsyncIterator[str]:
    """A loopback server answering every request as the API server answers a path it does not
    serve (a deleted CRD's kind): 404 with a plain-text body."""
    app = web.Application()

    async def not_found(_: web.Request) -> web.Response:
        return web.Response(status=404, text="404 page not found\n")

    app.router.add_route("*", "/{tail:.*}", not_found)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def kopf_error_for(path: str) -> BaseException:
    """What kopf raises for a 404 at ``path``: its own check_response, so a kopf upgrade that
    changes the shape fails here rather than in a cluster."""
    async with (
        not_found_server() as server,
        aiohttp.ClientSession() as session,
        session.get(server + path) as response,
    ):
        with pytest.raises(kopf_errors.APIError) as raised:
            await kopf_errors.check_response(response)
    return raised.value


@pytest.mark.parametrize(
    ("path", "plural"),
    [
        ("/apis/gptoss.dev/v1alpha1/modeldeployments?watch=true&resourceVersion=408", "modeldeployments"),
        ("/apis/gptoss.dev/v1alpha1/namespaces/llm/routepolicies?watch=true", "routepolicies"),
        ("/apis/gptoss.dev/v1alpha1/modeldeployments", "modeldeployments"),  # kopf's re-list
        ("/api/v1/pods?watch=true", None),
        ("/apis/other.example/v1/modeldeployments?watch=true", None),
    ],
)
async def test_a_404_from_a_deleted_crd_is_told_apart_from_other_fatal_errors(
    path: str, plural: str | None
) -> None:
    assert deleted_crd(await kopf_error_for(path)) == plural


def test_the_operator_exits_1_with_one_line_when_kopf_stops_on_a_deleted_crd(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = asyncio.run(kopf_error_for("/apis/gptoss.dev/v1alpha1/routepolicies?watch=true"))

    async def kopf_stopped_by(e: BaseException) -> None:
        raise e

    with caplog.at_level(logging.ERROR, logger="gptoss_operator"):
        assert run_until_stopped(kopf_stopped_by(error)) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "the routepolicies CRD was deleted while it was watched; exiting so that the restarted "
        "operator watches it afresh once it is back"
    ]
    pods_gone = asyncio.run(kopf_error_for("/api/v1/pods?watch=true"))
    with pytest.raises(type(pods_gone)):
        run_until_stopped(kopf_stopped_by(pods_gone))


async def stops() -> None:
    return None


def test_an_operator_that_was_stopped_exits_0() -> None:
    assert run_until_stopped(stops()) == 0


def test_errors_that_are_not_a_deleted_crd_keep_their_traceback() -> None:
    assert deleted_crd(RuntimeError("boom")) is None
    assert deleted_crd(KeyError("status")) is None


TERMINATING = KubeError(
    403,
    'HTTP 403 Forbidden: deployments "a" is forbidden: unable to create new content in namespace x '
    "because it is being terminated",
)


async def test_a_terminating_namespace_costs_one_refused_attempt_not_one_per_child_event() -> None:
    """The namespace controller deletes children before their owners: each deletion requeues the
    owner, whose apply is refused. One refusal settles every object of that namespace."""
    api, store = FakeKubeAPI(), Store()
    for name, namespace in (("a", "x"), ("b", "x"), ("c", "y")):
        api.put(md(name, namespace))
        store.put_model_deployment((namespace, name), md(name, namespace))
    api.fail_apply["Deployment"] = TERMINATING
    await reconcile(("x", "a"), api=api, store=store, settings=SETTINGS)
    refused = len(api.writes)
    assert refused > 0
    for _ in range(3):  # the Deployment, Service and pod deletions of both objects
        for key in (("x", "a"), ("x", "b")):
            await reconcile(key, api=api, store=store, settings=SETTINGS)
    assert len(api.writes) == refused
    assert "status" not in api.objects[("ModelDeployment", "x", "b")]
    assert not store.being_deleted(store.model_deployments[("y", "c")])  # another namespace
    store.drop_model_deployment(("x", "a"))  # its DELETED event
    store.drop_model_deployment(("x", "b"))
    assert store.doomed == set()
    # A namespace of the same name made again: new objects, new uids, reconciled as usual.
    del api.fail_apply["Deployment"]
    again = md("a", "x") | {"metadata": md("a", "x")["metadata"] | {"uid": "u-a-again"}}
    api.put(again)
    store.put_model_deployment(("x", "a"), again)
    await reconcile(("x", "a"), api=api, store=store, settings=SETTINGS)
    assert ("Deployment", "x", "a") in api.objects
