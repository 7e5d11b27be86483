"""A RoutePolicy end to end on a served cluster: the operator (the Helm chart's pod, namespaced,
under exactly the chart's RBAC) turns it into router pods, and the official openai client sends
requests to a router pod's IP, which routes them to vLLM simulator pods of a ModelDeployment and
to a hosted-provider simulator pod.

Everything runs inside the served cluster's network namespace (tests/support/netns.py); the
pods that answer are simulators (kind/README.md, "Served pods"). One stack per module; the
tests run in file order, each leaving the stack as the next expects it.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from devtools.cluster import REPO, LocalCluster, condition, running_pod, wait_for
from devtools.hosted_provider import api_key_secret, hosted_provider_pod
from tests.support.netns import http, in_netns
from tests.support.routepolicies import route_policy

MD = "oss-120b"
MODEL = "gpt-oss-120b"
PROVIDER_MODEL = "openai/gpt-oss-120b"
PROVIDER_PORT = 8443
SECRET = "provider-key"  # the name tests/support/routepolicies.py gives the hosted backend's Secret
SERVER_PODS = f"app.kubernetes.io/instance={MD},app.kubernetes.io/component=server"
ROUTER_PODS = "app.kubernetes.io/instance=chat,app.kubernetes.io/component=router"
RESTRICTED = {"x-data-class": "restricted"}


@dataclass
class Stack:
    cluster: LocalCluster
    namespace: str
    provider: str  # the hosted simulator's base URL (its pod IP)
    key: str

    @property
    def netns(self) -> Any:
        assert self.cluster.netns is not None
        return self.cluster.netns

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.cluster.get("pods", "-n", self.namespace, "-l", selector)["items"]
        return [
            p
            for p in items
            if p["status"].get("phase") == "Running"
            and p["status"].get("podIP")
            and not p["metadata"].get("deletionTimestamp")
        ]

    def router(self) -> str:
        """A router pod's base URL, once its process answers /readyz (kwok marks pods Ready at
        once; the pod runner's process takes a moment to listen)."""

        def ready() -> str | None:
            for pod in self.pods(ROUTER_PODS):
                base = f"http://{pod['status']['podIP']}:8080"
                try:
                    if http(self.netns, "GET", base + "/readyz", timeout=2).status_code == 200:
                        return base
                except httpx.TransportError:
                    continue
            return None

        try:
            return wait_for(ready, timeout=60, what="a router pod answering /readyz")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.logs('chat-router')}") from None

    def logs(self, pod_prefix: str) -> str:
        """The pod runner's log and the logs of this namespace's pods named ``pod_prefix``*
        (kind/podrunner.py writes them under the cluster's state directory)."""
        state = self.cluster.kubeconfig.parent
        out = []
        for path in sorted(state.glob(f"pods/{self.namespace}_{pod_prefix}*/*.log")):
            out.append(f"--- {path.parent.name}/{path.name} ---\n{path.read_text(errors='replace')[-3000:]}")
        runner = state / "logs" / "podrunner.log"
        if runner.exists():
            out.append(f"--- pod runner ---\n{runner.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def rp(self) -> dict[str, Any]:
        result: dict[str, Any] = self.cluster.get("routepolicy", "chat", "-n", self.namespace)
        return result

    def wait_rp(self, type_: str, status: str, reason: str, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            rp = self.rp()
            cond = condition(rp, type_)
            assert cond is not None, f"no {type_} condition; status={rp.get('status')}"
            assert (cond["status"], cond["reason"]) == (status, reason), cond
            return rp

        result: dict[str, Any] = wait_for(
            check, timeout=timeout, what=f"RoutePolicy {type_}={status}/{reason}"
        )
        return result

    def provider_requests(self) -> int:
        stats: dict[str, Any] = http(self.netns, "GET", self.provider + "/admin/stats").json()
        count: int = stats["requests"]
        return count

    def send(self, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
        """``n`` chat completions with the official client through a router pod; the answering
        backend of each (x-gptoss-backend), or ``error:<status>``."""
        base = self.router()

        def run() -> Counter[str]:
            seen: Counter[str] = Counter()
            with openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=30) as client:
                for _ in range(n):
                    try:
                        raw = client.chat.completions.with_raw_response.create(
                            model=MODEL,
                            messages=[{"role": "user", "content": "hello"}],
                            extra_headers=headers or {},
                        )
                    except openai.APIStatusError as e:
                        seen[f"error:{e.status_code}"] += 1
                        continue
                    completion = raw.parse()
                    assert completion.choices[0].message.content
                    seen[raw.headers.get("x-gptoss-backend", "?")] += 1
            return seen

        return in_netns(self.netns, run)


def _helm(cluster: LocalCluster, *args: str) -> None:
    proc = subprocess.run(
        cluster.command(str(cluster.bindir / "helm"), *args),
        capture_output=True,
        text=True,
        env=cluster.env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, f"helm {' '.join(args)} failed: {proc.stderr.strip()}"


def _install_operator(cluster: LocalCluster, namespace: str) -> None:
    """The chart's operator, namespaced to this test's namespace: it runs as a pod with its own
    service-account token and exactly the chart's RBAC (the CRDs are already installed)."""
    _helm(
        cluster,
        "install", "gptoss", str(REPO / "charts" / "gpt-oss-operator"), "-n", namespace,
        "--set", f"watchNamespaces={{{namespace}}}",
        "--set", "crds.enabled=false",
        # every process of a served cluster shares one network namespace: not the routers' 8080
        "--set", "metrics.port=9411", "--set", "livenessPort=9412",
        "--wait", "--timeout=120s",
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(served_cluster: LocalCluster) -> Iterator[Stack]:
    cluster = served_cluster
    ns = cluster.create_namespace("routepolicy-e2e")
    cluster.install_crds()
    key = f"sk-test-{uuid.uuid4().hex}"
    cluster.apply(
        [
            api_key_secret(SECRET, key),
            hosted_provider_pod(model=PROVIDER_MODEL, secret=SECRET, port=PROVIDER_PORT),
        ],
        ns,
    )
    _install_operator(cluster, ns)
    cluster.apply(
        {
            "apiVersion": "gptoss.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": MD},
            "spec": {"model": MODEL, "gpu": {"type": "H100-80GB"}},
        },
        ns,
    )
    provider_pod = running_pod(cluster, ns, "pod=provider")
    provider = f"http://{provider_pod['status']['podIP']}:{PROVIDER_PORT}"
    policy = route_policy("chat")
    hosted = policy["spec"]["routes"][0]["backends"][1]["external"]
    hosted["baseURL"] = provider + "/v1"
    cluster.apply(policy, ns)
    try:
        yield Stack(cluster, ns, provider, key)
    finally:
        _helm(cluster, "uninstall", "gptoss", "-n", ns)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_the_policy_is_ready_and_serves_the_configured_split(stack: Stack) -> None:
    stack.wait_rp("Ready", "True", "Serving", timeout=90)
    stack.wait_rp("Degraded", "False", "AsExpected")
    assert len(stack.pods(ROUTER_PODS)) == 2
    # Under the chart's RBAC every child was accepted at its first apply (the RoleBinding is
    # sent after its Role: routepolicy/decide.WRITE_STEPS).
    refused = stack.cluster.get("events", "-n", stack.namespace, "--field-selector", "reason=ApplyFailed")
    assert [e["message"] for e in refused["items"]] == []

    def pool_normal() -> bool | None:
        # Until a router has scraped the vLLM pods, their samples are stale and the pool counts
        # as saturated, which spills to the overflow backend (docs/router.md): not the split.
        for pod in stack.pods(ROUTER_PODS):
            try:
                text = http(stack.netns, "GET", f"http://{pod['status']['podIP']}:8080/metrics").text
            except httpx.TransportError:
                return None  # this router's process is still starting
            if f'gptoss_router_pool_saturated{{route="{MODEL}"}} 0.0' not in text:
                return None
        return True

    wait_for(pool_normal, timeout=30, what="both routers to see a fresh, unsaturated pool")
    seen = stack.send(200)
    assert set(seen) == {"local", "hosted"}, seen
    local = seen["local"] / 200
    # weights 80/20: 200 draws put the local share within 0.1 of 0.8 but for 1 run in ~5,000
    assert abs(local - 0.8) < 0.1, seen
    print(f"\nsplit over 200 requests: {dict(seen)}")


def test_scaling_the_model_is_followed_through_endpointslices(stack: Stack) -> None:
    before = {p["status"]["podIP"] for p in stack.pods(SERVER_PODS)}
    started = time.monotonic()
    stack.cluster.kubectl("scale", "modeldeployment", MD, "-n", stack.namespace, "--replicas=3")
    pods = wait_for(
        lambda: (lambda ps: ps if len(ps) == 3 else None)(stack.pods(SERVER_PODS)),
        timeout=60,
        what="3 vLLM pods",
    )
    new = [p["status"]["podIP"] for p in pods if p["status"]["podIP"] not in before]
    assert len(new) == 2

    def requests_at(ip: str) -> int:
        stats: dict[str, Any] = http(stack.netns, "GET", f"http://{ip}:8000/admin/stats").json()
        count: int = stats["by_path"].get("/v1/chat/completions", 0)
        return count

    def new_pods_served() -> bool | None:
        stack.send(10, headers=RESTRICTED)  # in-cluster only: every request lands on a vLLM pod
        return all(requests_at(ip) > 0 for ip in new) or None

    wait_for(new_pods_served, timeout=60, what="traffic on the new vLLM pods")
    print(f"\nscale to 3 -> new pods served after {time.monotonic() - started:.1f} s")


def test_restricted_requests_never_reach_the_provider_even_without_model_pods(stack: Stack) -> None:
    before = stack.provider_requests()
    seen = stack.send(30, headers=RESTRICTED)
    assert set(seen) == {"local"}, seen
    stack.cluster.kubectl("scale", "modeldeployment", MD, "-n", stack.namespace, "--replicas=0")
    wait_for(lambda: not stack.pods(SERVER_PODS) or None, timeout=60, what="no vLLM pods")
    seen = stack.send(30, headers=RESTRICTED)
    assert set(seen) <= {"local", "error:503"}, seen
    assert seen["error:503"] > 0
    assert stack.provider_requests() == before  # not one restricted request went to the provider
    # Unrestricted requests still have somewhere to go.
    assert set(stack.send(5)) == {"hosted"}


def test_a_rotated_secret_is_used_by_the_running_router(stack: Stack) -> None:
    new_key = f"sk-test-{uuid.uuid4().hex}"
    routers = {p["metadata"]["name"] for p in stack.pods(ROUTER_PODS)}
    http(stack.netns, "POST", stack.provider + "/admin/config", json={"require_key": new_key})
    stack.cluster.apply(api_key_secret(SECRET, new_key), stack.namespace)
    started = time.monotonic()

    def rotated() -> bool | None:
        return set(stack.send(3)) == {"hosted"} or None

    wait_for(rotated, timeout=30, what="the router to send the rotated key")
    stats = http(stack.netns, "GET", stack.provider + "/admin/stats").json()
    assert stats["keys_seen"][-1] == new_key
    assert {p["metadata"]["name"] for p in stack.pods(ROUTER_PODS)} == routers  # no restart
    print(f"\nrotated key in use after {time.monotonic() - started:.1f} s")


def test_a_missing_secret_is_reported_and_fixed_by_creating_it(stack: Stack) -> None:
    stack.cluster.kubectl("scale", "modeldeployment", MD, "-n", stack.namespace, "--replicas=1")
    stack.wait_rp("Degraded", "False", "AsExpected", timeout=60)
    stack.cluster.kubectl("delete", "secret", SECRET, "-n", stack.namespace)
    rp = stack.wait_rp("Degraded", "True", "SecretNotFound", timeout=30)
    hosted = next(b for b in rp["status"]["backends"] if b["name"] == "hosted")
    assert (hosted["ready"], hosted["reason"]) == (False, "SecretNotFound")
    stack.wait_rp("Ready", "True", "Serving")  # the route still has its in-cluster backend
    stack.cluster.apply(api_key_secret(SECRET, stack.key), stack.namespace)
    stack.wait_rp("Degraded", "False", "AsExpected", timeout=30)


def test_deleting_the_policy_removes_every_child(stack: Stack) -> None:
    ips = [p["status"]["podIP"] for p in stack.pods(ROUTER_PODS)]
    stack.cluster.kubectl("delete", "routepolicy", "chat", "-n", stack.namespace)
    kinds = (
        "deployment",
        "service",
        "configmap",
        "serviceaccount",
        "role",
        "rolebinding",
        "poddisruptionbudget",
    )

    def gone() -> bool | None:
        left = [
            f"{kind}/{item['metadata']['name']}"
            for kind in kinds
            for item in stack.cluster.get(
                kind, "-n", stack.namespace, "-l", "app.kubernetes.io/instance=chat"
            )["items"]
        ]
        assert not left, left
        return True

    wait_for(gone, timeout=60, what="every child of the RoutePolicy to be deleted")

    def closed() -> bool | None:
        for ip in ips:
            try:
                http(stack.netns, "GET", f"http://{ip}:8080/healthz", timeout=1)
                return None
            except httpx.TransportError:
                continue
        return True

    wait_for(closed, timeout=30, what="the router processes to stop")
