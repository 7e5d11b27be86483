"""The operator runs under exactly the documented permissions (gptoss_operator.rbac), and no
API call it makes is forbidden: a ServiceAccount bound to a ClusterRole built from the rules,
a ModelDeployment with a weight cache and a RoutePolicy (every child kind), then the operator's
log must hold no 403 / Forbidden. The operator logs JSON here (--log-format json)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.cluster import LocalCluster, condition, wait_for
from devtools.operator_process import OperatorProcess, settle
from gptoss_operator import rbac
from tests.support.modeldeployments import model_deployment, wait_ready
from tests.support.routepolicies import route_policy

SA_NAMESPACE = "gptoss-system"


def service_account_kubeconfig(cluster: LocalCluster, path: Path) -> Path:
    """The cluster's kubeconfig with the ServiceAccount's token (TokenRequest) as the user."""
    token = cluster.kubectl(
        "create", "token", "gptoss-operator", "-n", SA_NAMESPACE, "--duration=2h"
    ).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


SUBJECT = {"kind": "ServiceAccount", "name": "gptoss-operator", "namespace": SA_NAMESPACE}


def bindings(namespaced: bool) -> list[dict[str, Any]]:
    """The ServiceAccount and exactly the documented roles for the mode (rbac.py)."""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "gptoss-operator", "namespace": SA_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "gptoss-operator"},
            "rules": rbac.cluster_role_rules(namespaced=namespaced),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "gptoss-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "gptoss-operator",
            },
            "subjects": [SUBJECT],
        },
    ]
    if namespaced:
        objects += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "gptoss-operator", "namespace": "llm"},
                "rules": rbac.namespace_role_rules(),
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "gptoss-operator", "namespace": "llm"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "gptoss-operator",
                },
                "subjects": [SUBJECT],
            },
        ]
    return objects


@pytest.mark.parametrize("namespaced", [False, True], ids=["cluster-wide", "namespaced"])
def test_the_operator_needs_nothing_beyond_the_documented_rules(tmp_path: Path, namespaced: bool) -> None:
    local = LocalCluster.start(reuse_env=False)  # its own cluster: the session's operator is admin
    log = tmp_path / "operator.log"
    mode = ("--namespace", "llm") if namespaced else ()
    operator = OperatorProcess(local, log, extra_args=("--log-format", "json", *mode))
    try:
        operator.cluster.install_crds()
        local.kubectl("create", "namespace", SA_NAMESPACE)
        local.kubectl("create", "namespace", "llm")
        local.apply(bindings(namespaced))
        operator.kubeconfig = service_account_kubeconfig(local, tmp_path / "sa-kubeconfig")
        # Nothing else: the account may not even read a Secret's value.
        can = local.kubectl(
            "auth", "can-i", "get", "secrets", "-n", "llm",
            f"--as=system:serviceaccount:{SA_NAMESPACE}:gptoss-operator", check=False,
        )  # fmt: skip
        assert can.stdout.strip() == "no"
        # Why the RoutePolicy's RoleBinding waits for its Role (routepolicy/decide.WRITE_STEPS):
        # this identity may not bind a Role the API server cannot find yet.
        early = local.kubectl(
            "create", "rolebinding", "early", "-n", "llm", "--role=not-yet", "--serviceaccount=llm:default",
            f"--as=system:serviceaccount:{SA_NAMESPACE}:gptoss-operator", check=False,
        )  # fmt: skip
        assert early.returncode != 0, early.stdout
        # (The API server words it as if the binding were missing: the name is the Role's.)
        assert 'rolebindings.rbac.authorization.k8s.io "not-yet" not found' in early.stderr, early.stderr
        operator.start()

        cached = model_deployment("oss-120b", "gpt-oss-120b", "H100-80GB", source={"cache": {"size": "80Gi"}})
        local.apply(cached, "llm")
        local.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "provider-key"},
                "stringData": {"apiKey": "k"},
            },
            "llm",
        )
        policy = route_policy()
        policy["spec"]["router"]["replicas"] = 2  # a PodDisruptionBudget too
        local.apply(policy, "llm")
        wait_ready(local, "llm", "oss-120b", timeout=180)

        def router_children() -> bool:
            for kind in (
                "configmap",
                "serviceaccount",
                "role",
                "rolebinding",
                "deployment",
                "service",
                "pdb",
            ):
                local.get(kind, "chat-router", "-n", "llm")
            rp = local.get("routepolicy", "chat", "-n", "llm")
            assert condition(rp, "Ready") is not None, rp.get("status")
            return True

        wait_for(router_children, timeout=60, what="the RoutePolicy's children and status")
        settle(5)  # events, status patches and any late watch errors
        operator.assert_alive()
        text = log.read_text(errors="replace")
        forbidden = [line for line in text.splitlines() if re.search(r"\b403\b|Forbidden|forbidden", line)]
        assert forbidden == [], "\n".join(forbidden[:10])
        # No write refused for any other reason either (a RoleBinding sent before its Role was
        # refused with 404 for this identity, and retried: an ApplyFailed Warning per policy).
        failed = [line for line in text.splitlines() if "reconciling" in line and "failed" in line]
        assert failed == [], "\n".join(failed[:10])
        warnings = local.get("events", "-n", "llm", "--field-selector", "reason=ApplyFailed")["items"]
        assert [(e["involvedObject"]["name"], e["reason"]) for e in warnings] == []
        # --log-format json: every line is one JSON object.
        for line in text.splitlines():
            assert isinstance(json.loads(line), dict), line
    finally:
        operator.stop()
        local.stop()
