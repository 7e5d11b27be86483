"""RoutePolicy decide(): children, the resolved router configuration, and status, without a cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from gptoss_operator.api.routepolicy import RoutePolicy
from gptoss_operator.controller.desired import Apply, Delete, Desired
from gptoss_operator.controller.routepolicy.decide import decide
from gptoss_operator.controller.routepolicy.gathered import ModelDeploymentView, RoutePolicyGathered
from gptoss_operator.manifests.router import CONFIG_FILE
from gptoss_operator.observed import ChildState, DeploymentState, summarize_child
from gptoss_operator.router.config import parse_config
from gptoss_operator.settings import OperatorSettings
from tests.support.routepolicies import route_policy

NOW = "2026-01-01T00:00:00Z"
SETTINGS = OperatorSettings()
READY_MD = {"oss-120b": ModelDeploymentView("gpt-oss-120b", ready=True, summary="Ready: serving")}
KEY_PRESENT = {"provider-key": frozenset({"apiKey"})}


def body(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    out = route_policy("chat")
    out["metadata"] |= {"namespace": "llm", "uid": "u-rp", "generation": 1}
    out["spec"] |= spec
    if status is not None:
        out["status"] = status
    return out


def gathered(
    raw: dict[str, Any],
    children: Mapping[str, ChildState] | None = None,
    mds: Mapping[str, ModelDeploymentView] = READY_MD,
    secrets: Mapping[str, frozenset[str]] = KEY_PRESENT,
    services: frozenset[str] = frozenset(),
) -> RoutePolicyGathered:
    try:
        policy: RoutePolicy | None = RoutePolicy.model_validate(raw)
        error = None
    except ValueError as e:
        policy, error = None, str(e)
    return RoutePolicyGathered(
        key=("llm", "chat"),
        body=raw,
        policy=policy,
        spec_error=error,
        children=children or {},
        model_deployments=mds,
        services=services,
        secret_keys=secrets,
    )


def manifests(d: Desired) -> dict[str, dict[str, Any]]:
    return {w.manifest["kind"]: w.manifest for w in d.writes if isinstance(w, Apply)}


def converged(d: Desired, ready_routers: int = 2) -> dict[str, ChildState]:
    out = {kind: summarize_child(m) for kind, m in manifests(d).items()}
    dep = out["Deployment"]
    out["Deployment"] = DeploymentState(
        "Deployment", dep.name, dep.config_hash, replicas=2, ready_replicas=ready_routers
    )
    return out


def patch(d: Desired) -> dict[str, Any]:
    assert d.status.patch is not None
    return d.status.patch


def condition(d: Desired, type_: str) -> tuple[str, str]:
    cond = next(c for c in patch(d)["conditions"] if c["type"] == type_)
    return cond["status"], cond["reason"]


def test_children_go_out_identity_and_config_first_and_the_role_before_its_binding() -> None:
    # Binding a Role that the API server cannot find yet is refused for a writer without
    # `bind` (the operator's service account), so the RoleBinding waits for the Role's apply.
    d = decide(gathered(body()), SETTINGS, NOW)
    steps = [sorted(w.manifest["kind"] for w in step if isinstance(w, Apply)) for step in d.steps]
    assert steps == [
        ["ConfigMap", "Role", "ServiceAccount"],
        ["RoleBinding"],
        ["Deployment", "PodDisruptionBudget", "Service"],
    ]


def test_every_child_kind_has_a_write_step() -> None:
    from gptoss_operator import kinds
    from gptoss_operator.controller.routepolicy.decide import WRITE_STEPS

    stepped = [kind for step in WRITE_STEPS for kind in step]
    assert sorted(stepped) == sorted(k.kind for k in kinds.ROUTE_POLICY_CHILDREN)  # each once


def test_the_config_map_is_a_config_the_router_accepts_and_holds_no_secret() -> None:
    d = decide(gathered(body()), SETTINGS, NOW)
    text = manifests(d)["ConfigMap"]["data"][CONFIG_FILE]
    config = parse_config(text)  # the router's own parser: refuses anything it would not run
    route = config.routes[0]
    local, hosted = route.backends
    assert local.cluster is not None
    assert local.cluster.service is not None
    assert (local.cluster.service.name, local.cluster.service.namespace) == ("oss-120b", "llm")
    assert local.cluster.model == "gpt-oss-120b"
    assert hosted.external is not None
    assert hosted.external.api_key_file == "/var/run/secrets/gptoss-router/provider-key/apiKey"
    assert route.overflow is not None
    assert route.overflow.to == ["hosted"]
    assert config.residency[0].allow == "cluster"
    assert yaml.safe_load(text)["server"]["kubernetes"]["kubeconfig"] is None


def test_the_router_pod_runs_restricted_and_mounts_the_key_as_a_file() -> None:
    dep = manifests(decide(gathered(body()), SETTINGS, NOW))["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["gptoss-operator"]
    assert container["args"][:3] == ["router", "--config", "/etc/gptoss-router/config.yaml"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    secret = next(v for v in pod["volumes"] if "secret" in v)["secret"]
    assert secret["secretName"] == "provider-key"
    assert secret["items"] == [{"key": "apiKey", "path": "apiKey"}]
    assert pod["serviceAccountName"] == "chat-router"


def test_the_role_allows_reading_endpointslices_and_nothing_else() -> None:
    role = manifests(decide(gathered(body()), SETTINGS, NOW))["Role"]
    assert role["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    ]


def test_converged_and_ready_means_no_writes() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    children = converged(first)
    second = decide(gathered(body(), children=children), SETTINGS, NOW)
    assert second.writes == ()
    assert condition(second, "Ready") == ("True", "Serving")
    assert condition(second, "Degraded") == ("False", "AsExpected")
    status = {k: v for k, v in patch(second).items() if v is not None}
    third = decide(gathered(body(status=status), children=children), SETTINGS, NOW)
    assert third.writes == ()
    assert third.status.patch is None
    assert third.status.events == ()


def test_status_names_the_endpoint_and_counts() -> None:
    d = decide(gathered(body()), SETTINGS, NOW)
    assert patch(d)["endpoint"] == "http://chat-router.llm.svc:8080/v1"
    assert patch(d)["routeCount"] == 1
    assert patch(d)["readyText"] == "2/2"


def test_a_missing_secret_degrades_with_its_reason_and_the_fix_clears_it() -> None:
    first = decide(gathered(body(), secrets={}), SETTINGS, NOW)
    children = converged(first)
    missing = decide(gathered(body(), children=children, secrets={}), SETTINGS, NOW)
    assert condition(missing, "Degraded") == ("True", "SecretNotFound")
    assert condition(missing, "Ready") == ("True", "Serving")  # the local backend still serves
    hosted = next(b for b in patch(missing)["backends"] if b["name"] == "hosted")
    assert hosted["ready"] is False
    assert hosted["reason"] == "SecretNotFound"
    status = {k: v for k, v in patch(missing).items() if v is not None}
    fixed = decide(gathered(body(status=status), children=children), SETTINGS, NOW)
    assert condition(fixed, "Degraded") == ("False", "AsExpected")
    assert [e.reason for e in fixed.status.events] == ["AsExpected"]


def test_a_secret_without_the_key() -> None:
    d = decide(gathered(body(), secrets={"provider-key": frozenset({"other"})}), SETTINGS, NOW)
    assert condition(d, "Degraded") == ("True", "SecretKeyMissing")


def test_model_deployment_missing_or_not_ready() -> None:
    gone = decide(gathered(body(), mds={}), SETTINGS, NOW)
    assert condition(gone, "Degraded") == ("True", "ModelDeploymentNotFound")
    starting = {"oss-120b": ModelDeploymentView("gpt-oss-120b", ready=False, summary="Starting: 0/1")}
    assert condition(decide(gathered(body(), mds=starting), SETTINGS, NOW), "Degraded") == (
        "True",
        "ModelDeploymentNotReady",
    )


def test_a_model_scaled_to_zero_is_not_on_its_way() -> None:
    off = {
        "oss-120b": ModelDeploymentView(
            "gpt-oss-120b", ready=False, summary="ScaledToZero: spec.replicas is 0", scaled_to_zero=True
        )
    }
    d = decide(gathered(body(), mds=off), SETTINGS, NOW)
    assert condition(d, "Degraded") == ("True", "ModelDeploymentScaledToZero")
    local = next(b for b in patch(d)["backends"] if b["name"] == "local")
    assert local["message"] == "ModelDeployment oss-120b is scaled to zero (ScaledToZero: spec.replicas is 0)"


@pytest.mark.parametrize("model", ["starting", "off"])
def test_a_backend_that_needs_a_hand_names_the_condition_before_one_that_waits(model: str) -> None:
    # The local backend comes first in the route, but its model is only starting or scaled to
    # zero; the hosted backend's missing Secret is what someone must fix.
    view = {
        "starting": ModelDeploymentView("gpt-oss-120b", ready=False, summary="Starting: 0/1"),
        "off": ModelDeploymentView("gpt-oss-120b", ready=False, summary="ScaledToZero", scaled_to_zero=True),
    }[model]
    d = decide(gathered(body(), mds={"oss-120b": view}, secrets={}), SETTINGS, NOW)
    assert condition(d, "Degraded") == ("True", "SecretNotFound")


def test_no_ready_backend_on_a_route_makes_it_unready() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    d = decide(gathered(body(), children=converged(first), mds={}, secrets={}), SETTINGS, NOW)
    assert condition(d, "Ready") == ("False", "NoReadyBackend")


def test_router_pods_not_ready_yet() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    d = decide(gathered(body(), children=converged(first, ready_routers=0)), SETTINGS, NOW)
    assert condition(d, "Ready") == ("False", "RouterStarting")


def test_a_service_backend_needs_its_service() -> None:
    raw = body()
    raw["spec"]["routes"][0]["backends"][0] = {"name": "local", "service": {"name": "vllm", "port": 8000}}
    assert condition(decide(gathered(raw), SETTINGS, NOW), "Degraded") == ("True", "ServiceNotFound")
    assert condition(decide(gathered(raw, services=frozenset({"vllm"})), SETTINGS, NOW), "Degraded") == (
        "False",
        "AsExpected",
    )


def test_one_replica_drops_the_disruption_budget() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    raw = body(router={"replicas": 1})
    d = decide(gathered(raw, children=converged(first)), SETTINGS, NOW)
    assert [w.kind for w in d.writes if isinstance(w, Delete)] == ["PodDisruptionBudget"]


def test_a_config_change_touches_only_the_config_map() -> None:
    first = decide(gathered(body()), SETTINGS, NOW)
    raw = body()
    raw["spec"]["routes"][0]["backends"][0]["weight"] = 50
    d = decide(gathered(raw, children=converged(first)), SETTINGS, NOW)
    assert sorted(manifests(d)) == ["ConfigMap"]  # the routers reload it: no rollout


def test_an_invalid_spec_writes_status_only() -> None:
    raw = body()
    raw["spec"]["routes"][0]["backends"][0]["weight"] = 500
    d = decide(gathered(raw), SETTINGS, NOW)
    assert d.writes == ()
    assert condition(d, "Ready") == ("False", "InvalidSpec")
    assert condition(d, "Degraded") == ("True", "InvalidSpec")


def test_a_failed_write_is_reported() -> None:
    d = decide(gathered(body()), SETTINGS, NOW)
    failed = d.on_write_failure("HTTP 403 Forbidden: roles is forbidden")
    assert failed.patch is not None
    degraded = next(c for c in failed.patch["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyFailed")
    assert "roles is forbidden" in degraded["message"]


def test_transition_times_move_only_with_the_status() -> None:
    later = "2026-01-02T00:00:00Z"
    children = converged(decide(gathered(body()), SETTINGS, NOW))
    serving = decide(gathered(body(), children=children), SETTINGS, NOW)
    status = {k: v for k, v in patch(serving).items() if v is not None}
    # The secret goes missing: Degraded flips (new time), Ready stays True (time kept).
    missing = decide(gathered(body(status=status), children=children, secrets={}), SETTINGS, later)
    times = {c["type"]: c["lastTransitionTime"] for c in patch(missing)["conditions"]}
    assert times == {"Ready": NOW, "Degraded": later}


@pytest.mark.parametrize(
    ("phase", "ready", "off"),
    [("ScaledToZero", "False", True), ("Starting", "False", False), ("Ready", "True", False)],
)
def test_gather_tells_a_model_scaled_to_zero_from_one_on_its_way(phase: str, ready: str, off: bool) -> None:
    from gptoss_operator.controller.routepolicy.gather import _view

    md = {
        "spec": {"model": "gpt-oss-120b"},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "message": "m"}]},
    }
    view = _view(md)
    assert (view.scaled_to_zero, view.ready, view.summary) == (off, ready == "True", f"{phase}: m")
