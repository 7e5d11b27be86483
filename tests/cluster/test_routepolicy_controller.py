"""The RoutePolicy controller on the real control plane: children, resolved config, status, GC."""

from __future__ import annotations

import time
from typing import Any

import yaml

from devtools.cluster import LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess, settle
from tests.support.modeldeployments import model_deployment, wait_ready
from tests.support.routepolicies import route_policy

ROUTER_KINDS = (
    "deployment",
    "service",
    "configmap",
    "serviceaccount",
    "role",
    "rolebinding",
    "poddisruptionbudget",
)


def get_rp(cluster: LocalCluster, namespace: str, name: str = "chat") -> dict[str, Any]:
    result: dict[str, Any] = cluster.get("routepolicy", name, "-n", namespace)
    return result


def wait_rp(
    cluster: LocalCluster, namespace: str, type_: str, status: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        rp = get_rp(cluster, namespace)
        cond = condition(rp, type_)
        assert cond is not None, f"no {type_} condition yet; status={rp.get('status')}"
        assert (cond["status"], cond["reason"]) == (status, reason), f"{type_}: {cond}"
        return rp

    result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"RoutePolicy {type_}={status}/{reason}")
    return result


def versions(cluster: LocalCluster, namespace: str) -> dict[str, str]:
    out = {
        kind: cluster.get(kind, "chat-router", "-n", namespace)["metadata"]["resourceVersion"]
        for kind in ROUTER_KINDS
    }
    out["routepolicy"] = get_rp(cluster, namespace)["metadata"]["resourceVersion"]
    events = cluster.get("events", "-n", namespace, "--field-selector", "involvedObject.kind=RoutePolicy")
    out["events"] = str(len(events["items"]))
    return out


def secret(value: str = "sk-test-123") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "provider-key"},
        "stringData": {"apiKey": value},
    }


def test_a_policy_becomes_a_router_and_follows_its_secret_and_model(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(model_deployment("oss-120b", "gpt-oss-120b", "H100-80GB"), namespace)
    cluster.apply(route_policy("chat"), namespace)

    rp = wait_rp(cluster, namespace, "Degraded", "True", "SecretNotFound")
    assert rp["status"]["endpoint"] == f"http://chat-router.{namespace}.svc:8080/v1"
    assert rp["status"]["routeCount"] == 1
    for kind in ROUTER_KINDS:
        child = cluster.get(kind, "chat-router", "-n", namespace)
        assert child["metadata"]["ownerReferences"][0]["kind"] == "RoutePolicy"

    config = yaml.safe_load(cluster.get("configmap", "chat-router", "-n", namespace)["data"]["config.yaml"])
    local, hosted = config["routes"][0]["backends"]
    assert local["cluster"]["service"] == {"name": "oss-120b", "namespace": namespace, "port": "http"}
    assert hosted["external"]["apiKeyFile"] == "/var/run/secrets/gptoss-router/provider-key/apiKey"
    role = cluster.get("role", "chat-router", "-n", namespace)
    assert role["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    ]

    # The Secret appears: the policy is updated at once (a watch event, not a resync).
    started = time.monotonic()
    cluster.apply(secret(), namespace)
    wait_rp(cluster, namespace, "Degraded", "False", "AsExpected", timeout=30)
    secret_seconds = time.monotonic() - started
    assert secret_seconds < 10
    dump = str(cluster.get("configmap", "chat-router", "-n", namespace)) + str(get_rp(cluster, namespace))
    assert "sk-test-123" not in dump

    wait_ready(cluster, namespace, "oss-120b")
    rp = wait_rp(cluster, namespace, "Ready", "True", "Serving")
    assert rp["status"]["readyText"] == "2/2"
    events = cluster.get("events", "-n", namespace, "--field-selector", "involvedObject.kind=RoutePolicy")
    assert {"SecretNotFound", "AsExpected"} <= {e["reason"] for e in events["items"]}

    # Deleting the model it points at is reported at once too.
    cluster.kubectl("delete", "modeldeployment", "oss-120b", "-n", namespace)
    wait_rp(cluster, namespace, "Degraded", "True", "ModelDeploymentNotFound", timeout=30)


def test_idle_means_zero_writes_and_a_weight_change_reaches_only_the_config_map(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(secret(), namespace)
    cluster.apply(route_policy("chat"), namespace)
    wait_rp(cluster, namespace, "Degraded", "True", "ModelDeploymentNotFound")
    wait_for(
        lambda: get_rp(cluster, namespace)["status"].get("observedGeneration") == 1 or None,
        timeout=30,
        what="observed",
    )
    settle(2)
    # Per object (the operator's write counters are global, and other tests' namespaces are
    # being torn down meanwhile): nothing of this policy changes while nothing happens.
    before = versions(cluster, namespace)
    settle(5)
    assert versions(cluster, namespace) == before, "an idle RoutePolicy caused writes"
    dep_version = before["deployment"]

    body = route_policy("chat")
    body["spec"]["routes"][0]["backends"][0]["weight"] = 50
    cluster.apply(body, namespace)

    def reweighted() -> bool | None:
        text = cluster.get("configmap", "chat-router", "-n", namespace)["data"]["config.yaml"]
        return yaml.safe_load(text)["routes"][0]["backends"][0]["weight"] == 50 or None

    wait_for(reweighted, timeout=30, what="the new weight in the ConfigMap")
    # The routers reload the file: their pods are not rolled.
    assert (
        cluster.get("deployment", "chat-router", "-n", namespace)["metadata"]["resourceVersion"]
        == dep_version
    )


def test_deleting_the_policy_removes_every_child(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(route_policy("chat"), namespace)
    wait_for(lambda: cluster.get("deployments", "-n", namespace)["items"] or None, timeout=30, what="router")
    cluster.kubectl("delete", "routepolicy", "chat", "-n", namespace)

    def gone() -> bool | None:
        left = [
            f"{kind}/{item['metadata']['name']}"
            for kind in ROUTER_KINDS
            for item in cluster.get(kind, "-n", namespace, "-l", "app.kubernetes.io/instance=chat")["items"]
        ]
        assert not left, f"still there: {left}"
        return True

    wait_for(gone, timeout=60, what="the garbage collector to remove the router's children")


def test_kubectl_get_gptoss_lists_both_kinds_with_columns(
    cluster: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    cluster.apply(route_policy("chat"), namespace)
    cluster.apply(model_deployment("oss-20b", "gpt-oss-20b", "L4"), namespace)
    wait_for(
        lambda: get_rp(cluster, namespace).get("status", {}).get("readyText") or None,
        timeout=30,
        what="status",
    )
    out = cluster.kubectl("get", "gptoss", "-n", namespace).stdout
    assert "routepolicy.gptoss.dev/chat" in out
    assert "modeldeployment.gptoss.dev/oss-20b" in out
    table = cluster.kubectl("get", "rp", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "ROUTES", "BACKENDS", "ENDPOINT"]
    assert row.split()[1:4] == ["1", "0/2", f"http://chat-router.{namespace}.svc:8080/v1"]
