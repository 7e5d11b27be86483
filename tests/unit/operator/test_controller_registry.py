"""The kopf registry the operator runs with: only event handlers, nothing kopf would persist."""

from __future__ import annotations

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
