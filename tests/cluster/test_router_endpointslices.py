"""The router's EndpointSlice watcher against the real kube-apiserver (no mock API server).

A Service without a selector has no EndpointSlices but the ones we write, so each test owns
exactly what the router sees. The EndpointSlices point at simulators on this host, and the real
router process (a kubeconfig for this cluster) must follow every change without a restart.

The simulators listen on one of this host's non-loopback IPv4 addresses, not 127.0.0.1: the
API server refuses loopback addresses in EndpointSlices (``endpoints[0].addresses[0]: Invalid
value: "127.0.0.1": may not be in the loopback range``), as it refuses link-local ones.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from devtools.cluster import LocalCluster, wait_for
from tests.support.procs import Router, Sim, config, route

MODEL = "gpt-oss-20b"
SERVICE = "oss-20b"
SLICE = f"{SERVICE}-manual"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "which simulator?"}]


def host_address() -> str:
    """An IPv4 address of this host that an EndpointSlice accepts (not loopback or link-local)."""
    SIOCGIFADDR = 0x8915
    seen = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on this interface
            addr = ipaddress.IPv4Address(packed[20:24])
            seen.append(f"{name}={addr}")
            if not (addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast):
                return str(addr)
    pytest.fail(f"no non-loopback IPv4 address on this host for EndpointSlices (interfaces: {seen})")


@pytest.fixture
def sims() -> Iterator[tuple[Sim, Sim]]:
    host = host_address()
    a = Sim("slice-a", host=host)
    try:
        b = Sim("slice-b", host=host)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def routers() -> Iterator[list[Router]]:
    started: list[Router] = []
    yield started
    for r in started:
        r.stop()


def service(namespace: str) -> dict[str, Any]:
    """No selector: neither the EndpointSlice controller nor the mirroring controller touch it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": namespace},
        "spec": {"ports": [{"name": "http", "port": 8000, "protocol": "TCP"}]},
    }


def endpoint_slice(namespace: str, sim: Sim, *, ready: bool = True) -> dict[str, Any]:
    host = httpx.URL(sim.url).host
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": SLICE,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": "pytest",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host], "conditions": {"ready": ready}}],
        "ports": [{"name": "http", "port": sim.port, "protocol": "TCP"}],
    }


def router_config(namespace: str, kubeconfig: Path) -> dict[str, Any]:
    backend = {
        "name": "local",
        "cluster": {"service": {"name": SERVICE, "namespace": namespace, "port": "http"}},
    }
    return config(route(MODEL, backend), kubernetes={"kubeconfig": str(kubeconfig)})


def ask(router: Router) -> str:
    """One chat completion through the official client; the backend the router says answered."""
    raw = router.openai().chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert raw.parse().choices[0].message.content
    return str(raw.headers["x-gptoss-backend"])


def served_by(router: Router, sim: Sim, other: Sim) -> bool:
    """True once a request lands on ``sim`` (and not on ``other``); for polling."""
    before, before_other = sim.stats()["requests"], other.stats()["requests"]
    try:
        backend = ask(router)
    except openai.APIStatusError as e:
        raise AssertionError(f"router answered {e.status_code}: {e.message}") from None
    assert backend == "local"
    return bool(sim.stats()["requests"] == before + 1 and other.stats()["requests"] == before_other)


def assert_all_served_by(router: Router, sim: Sim, other: Sim, n: int = 10) -> None:
    before, before_other = sim.stats()["requests"], other.stats()["requests"]
    for _ in range(n):
        assert ask(router) == "local"
    assert sim.stats()["requests"] == before + n, f"{sim.name} should have served all {n} requests"
    assert other.stats()["requests"] == before_other, f"{other.name} should have served none"


def no_backend_error(router: Router) -> dict[str, Any] | None:
    """The router's 503 for a Service without ready endpoints (None while it still serves)."""
    started = time.monotonic()
    r = router.http.post("/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES}, timeout=10.0)
    assert time.monotonic() - started < 5, "the router should answer at once, not wait for endpoints"
    if r.status_code == 200:
        return None
    assert r.status_code == 503, r.text
    body: dict[str, Any] = r.json()
    return body


def test_router_follows_endpointslices_of_a_service(
    cluster: LocalCluster, namespace: str, sims: tuple[Sim, Sim], routers: list[Router]
) -> None:
    a, b = sims
    cluster.apply([service(namespace), endpoint_slice(namespace, a)], namespace)
    router = Router(router_config(namespace, cluster.kubeconfig))
    routers.append(router)

    # Listed from the real API server: requests reach the simulator the slice names.
    wait_for(lambda: served_by(router, a, b), timeout=20, what="the first request served by slice-a")
    assert_all_served_by(router, a, b)

    # Watched: repoint the slice at the second simulator; no restart.
    cluster.apply(endpoint_slice(namespace, b), namespace)
    wait_for(lambda: served_by(router, b, a), timeout=20, what="traffic to move to slice-b")
    assert_all_served_by(router, b, a)

    # Streaming goes there too.
    before = b.stats()["requests"]
    stream = router.openai().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert b.stats()["requests"] == before + 1

    # Not ready: nothing can serve, and the client gets the clear OpenAI-shaped 503 at once.
    cluster.apply(endpoint_slice(namespace, b, ready=False), namespace)
    body = wait_for(lambda: no_backend_error(router), timeout=20, what="a 503 once the endpoint is not ready")
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "no_backend_available"
    assert "no ready endpoints" in error["message"], error["message"]
    with pytest.raises(openai.APIStatusError) as e:
        router.openai().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert e.value.status_code == 503
    assert e.value.code == "no_backend_available"

    # Ready again, then the slice deleted: served, then the same 503 (a DELETED watch event).
    cluster.apply(endpoint_slice(namespace, b), namespace)
    wait_for(lambda: served_by(router, b, a), timeout=20, what="slice-b ready again")
    cluster.kubectl("delete", "endpointslice", SLICE, "-n", namespace)
    body = wait_for(lambda: no_backend_error(router), timeout=20, what="a 503 once the slice is deleted")
    assert body["error"]["code"] == "no_backend_available"

    # A new slice (ADDED) brings the first simulator back, still the same router process.
    cluster.apply(endpoint_slice(namespace, a), namespace)
    wait_for(lambda: served_by(router, a, b), timeout=20, what="a re-created slice to serve again")
    assert router.proc.poll() is None
    warnings = [r for r in router.log_records() if r.get("msg") == "endpointslice watch failed; retrying"]
    assert not warnings, json.dumps(warnings[:3])


def least_privilege_kubeconfig(cluster: LocalCluster, namespace: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount holding exactly the RBAC docs/router.md documents."""
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "router", "namespace": namespace},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "router", "namespace": namespace},
                "rules": [
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["get", "list", "watch"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "router", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "router"},
                "subjects": [{"kind": "ServiceAccount", "name": "router", "namespace": namespace}],
            },
        ],
        namespace,
    )
    token = cluster.kubectl("create", "token", "router", "-n", namespace, "--duration=1h").stdout.strip()
    view = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    server = view["clusters"][0]["cluster"]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": server}],
        "users": [{"name": "router", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "router"}}],
        "current-context": "c",
    }
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def test_router_watches_with_only_the_documented_rbac(
    cluster: LocalCluster,
    namespace: str,
    sims: tuple[Sim, Sim],
    routers: list[Router],
    tmp_path: Path,
) -> None:
    a, b = sims
    kubeconfig = least_privilege_kubeconfig(cluster, namespace, tmp_path / "router.kubeconfig")

    # The token can do what the router needs, and nothing more (so the test would notice a
    # router that needed more, e.g. Services or Endpoints).
    def can(verb: str, resource: str) -> str:
        return cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace, f"--kubeconfig={kubeconfig}", check=False
        ).stdout.strip()

    assert can("watch", "endpointslices.discovery.k8s.io") == "yes"
    assert can("list", "services") == "no"

    cluster.apply([service(namespace), endpoint_slice(namespace, a)], namespace)
    router = Router(router_config(namespace, kubeconfig))
    routers.append(router)
    wait_for(lambda: served_by(router, a, b), timeout=20, what="a request served via the SA's list")
    cluster.apply(endpoint_slice(namespace, b), namespace)
    wait_for(lambda: served_by(router, b, a), timeout=20, what="traffic to follow the SA's watch")
    warnings = [r for r in router.log_records() if r.get("msg") == "endpointslice watch failed; retrying"]
    assert not warnings, json.dumps(warnings[:3])
