"""The RoutePolicy CRD on the real API server: it installs, its CEL rules refuse bad policies with
their messages, kubectl explains it, and the short name, category and printer columns work."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.cluster import LocalCluster, wait_for
from devtools.operator_process import OperatorProcess
from gptoss_operator.api import RoutePolicy
from gptoss_operator.api.routepolicy import Backend
from tests.support.modeldeployments import model_deployment
from tests.support.refusals import field_of, messages_for
from tests.support.routepolicies import REFUSED, Refusal, route_policy


@pytest.fixture(scope="module")
def crds(cluster: LocalCluster) -> LocalCluster:
    """Both CRDs installed from crds/ (the generator's output), and Established."""
    cluster.install_crds()
    return cluster


def create(cluster: LocalCluster, namespace: str, body: dict[str, Any]) -> Any:
    return cluster.kubectl("create", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False)


def flat(text: str) -> str:
    """kubectl wraps explanations at 80 columns; compare with whitespace collapsed."""
    return " ".join(text.split())


def test_the_design_example_is_accepted_and_parses_back(crds: LocalCluster, namespace: str) -> None:
    proc = create(crds, namespace, route_policy())
    assert proc.returncode == 0, proc.stderr
    stored = crds.get("routepolicy", "chat", "-n", namespace)
    assert stored["spec"]["routes"][0]["backends"][1]["external"]["baseURL"] == "https://provider.example/v1"
    policy = RoutePolicy.model_validate(stored)
    assert policy.spec.routes[0].overflow is not None
    assert policy.spec.routes[0].overflow.to == "hosted"


def test_the_api_server_fills_defaults(crds: LocalCluster, namespace: str) -> None:
    body = route_policy("minimal")
    body["spec"] = {
        "router": {},
        "routes": [
            {
                "model": "gpt-oss-20b",
                "backends": [{"name": "local", "service": {"name": "vllm"}}],
                "fallback": {"on": ["5xx", 429]},  # 429 as YAML writes it unquoted: a number
                "timeouts": {},
            }
        ],
    }
    proc = create(crds, namespace, body)
    assert proc.returncode == 0, proc.stderr
    spec = crds.get("routepolicy", "minimal", "-n", namespace)["spec"]
    assert spec["router"] == {"replicas": 2, "port": 8080, "serviceType": "ClusterIP"}
    route = spec["routes"][0]
    assert route["backends"][0] == {"name": "local", "weight": 1, "service": {"name": "vllm", "port": "http"}}
    assert route["fallback"] == {"on": ["5xx", 429], "maxAttempts": 2}
    assert route["timeouts"] == {"connect": "2s", "firstByte": "60s", "idle": "30s"}
    assert RoutePolicy.model_validate({"metadata": {"name": "minimal"}, "spec": spec}).spec.routes[
        0
    ].fallback.on == ["5xx", "429"]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_each_rule_refuses_with_its_message(crds: LocalCluster, namespace: str, case: Refusal) -> None:
    body = case.body()
    proc = create(crds, namespace, body)
    assert proc.returncode != 0, f"the API server accepted {case.id}"
    # One mistake, one message: the rule's, and no second rule or schema check on that field.
    field = field_of(proc.stderr, case.message)
    assert len(messages_for(proc.stderr, field)) == 1, proc.stderr
    assert crds.get("routepolicies", "-n", namespace)["items"] == []


def test_explain_describes_the_backend_fields(crds: LocalCluster) -> None:
    out = flat(crds.kubectl("explain", "routepolicy.spec.routes.backends").stdout)
    for name, field in Backend.model_fields.items():
        assert field.description, name
        assert flat(field.description) in out, f"{name}: {field.description!r} not in {out!r}"
    external = flat(crds.kubectl("explain", "rp.spec.routes.backends.external").stdout)
    assert "apiKeySecretRef" in external
    assert "Request/response quirks profile" in external


@pytest.mark.parametrize(
    "field", ["md.spec.gpu.count", "rp.spec.routes.backends.service.port", "rp.spec.routes.fallback.on"]
)
def test_explain_says_int_or_string_where_its_type_cannot(crds: LocalCluster, field: str) -> None:
    # kubectl explain prints <Object> (<[]Object>) for an int-or-string field of a custom resource
    # (kubernetes/kubernetes#130946, docs/api.md): the description it prints must say what it takes.
    out = crds.kubectl("explain", field).stdout
    assert "int-or-string" in flat(out), out


def test_get_gptoss_lists_both_kinds(crds: LocalCluster, namespace: str) -> None:
    crds.apply(model_deployment("oss-120b", "gpt-oss-120b", "H100-80GB"), namespace)
    crds.apply(route_policy(), namespace)
    names = crds.kubectl("get", "gptoss", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(names) == ["modeldeployment.gptoss.dev/oss-120b", "routepolicy.gptoss.dev/chat"]


def test_get_rp_shows_the_columns_from_status(
    crds: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    body = route_policy()
    # Status on the main resource is ignored (status subresource): only the controller writes it.
    body["status"] = {"routeCount": 9, "readyText": "9/9"}
    crds.apply(body, namespace)

    def written() -> dict[str, Any] | None:
        status: dict[str, Any] | None = crds.get("rp", "chat", "-n", namespace).get("status")
        return status if status and status.get("readyText") else None

    status = wait_for(written, timeout=30, what="the controller's status")
    assert (status["routeCount"], status["readyText"]) == (1, "0/2")  # no model, no key Secret yet
    lines = crds.kubectl("get", "rp", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROUTES", "BACKENDS", "ENDPOINT", "AGE"]
    row = lines[1].split()
    assert row[:4] == ["chat", "1", "0/2", f"http://chat-router.{namespace}.svc:8080/v1"]
    parsed = RoutePolicy.model_validate(crds.get("rp", "chat", "-n", namespace))
    assert parsed.status is not None
    assert {b.reason for b in parsed.status.backends} == {"ModelDeploymentNotFound", "SecretNotFound"}
