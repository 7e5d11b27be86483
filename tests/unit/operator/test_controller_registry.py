"""The kopf registry the operator runs with: only event handlers, nothing kopf would persist."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_operator.controller.controller import Controller, NoDiffBase
from gptoss_operator.metrics import OperatorMetrics
from gptoss_operator.settings import OperatorSettings


@pytest.fixture
def controller() -> Controller:
    return Controller(OperatorSettings(), OperatorMetrics())


def test_no_change_detection_handlers(controller: Controller) -> None:
    # NoDiffBase drops kopf's "last handled" essence: a change handler (on.create/update/
    # resume/delete) added later would silently never see a change. Fail here instead.
    assert list(controller.registry._changing.get_all_handlers()) == []
    assert list(controller.registry._spawning.get_all_handlers()) == []  # daemons/timers persist too


def test_watches_the_custom_resource_its_children_pods_and_nodes(controller: Controller) -> None:
    watched = {
        (h.selector.group or "", h.selector.any_name)
        for h in controller.registry._watching.get_all_handlers()
        if h.selector is not None
    }
    assert watched == {
        ("gptoss.dev", "modeldeployments"),
        ("apps", "deployments"),
        ("", "services"),
        ("policy", "poddisruptionbudgets"),
        ("", "persistentvolumeclaims"),
        ("batch", "jobs"),
        ("gptoss.dev", "routepolicies"),
        ("", "configmaps"),
        ("", "serviceaccounts"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("", "secrets"),
        ("", "pods"),
        ("", "nodes"),
    }


def test_no_diff_base_keeps_nothing() -> None:
    storage = NoDiffBase()
    assert storage.build(body={"spec": {"a": 1}}) == {}  # type: ignore[arg-type]
    assert storage.fetch(body={"metadata": {"annotations": {"x": "{}"}}}) is None  # type: ignore[arg-type]


async def test_the_api_server_selects_the_children_by_the_operator_s_label(controller: Controller) -> None:
    # Every watched child kind but claims is narrowed server-side to the operator's own objects;
    # claims, pods, nodes, Secrets and the custom resources are watched whole.
    import asyncio

    import kopf
    from kopf._cogs.structs.references import Resource

    settings = kopf.OperatorSettings()
    startup: Any = next(
        h.fn
        for h in controller.registry._activities.get_all_handlers()
        if h.activity is not None and h.activity.value == "startup"
    )
    await startup(settings=settings)
    for task in controller._workers:
        task.cancel()
    await asyncio.gather(*controller._workers, return_exceptions=True)
    selected = {}
    for h in controller.registry._watching.get_all_handlers():
        assert h.selector is not None
        resource = Resource(
            h.selector.group or "", h.selector.version or "v1", str(h.selector.any_name), namespaced=True
        )
        selected[resource.plural] = list(settings.watching.label_selectors.collect(resource))
    managed = ["app.kubernetes.io/managed-by=gptoss-operator"]
    assert selected == {
        "deployments": managed,
        "services": managed,
        "poddisruptionbudgets": managed,
        "jobs": managed,
        "configmaps": managed,
        "serviceaccounts": managed,
        "roles": managed,
        "rolebindings": managed,
        "persistentvolumeclaims": [],
        "modeldeployments": [],
        "routepolicies": [],
        "secrets": [],
        "pods": [],
        "nodes": [],
    }
