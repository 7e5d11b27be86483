"""EndpointSlices -> endpoint URLs (pure), and the list+watch loop against a mock API server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gptoss_operator.router.endpointslices import KubeAuth, ServiceWatch, kubeconfig_auth, ready_urls


def eps(
    name: str, *addrs: tuple[str, bool | None], port: int = 8000, port_name: str = "http"
) -> dict[str, Any]:
    endpoints = []
    for addr, ready in addrs:
        e: dict[str, Any] = {"addresses": [addr]}
        if ready is not None:
            e["conditions"] = {"ready": ready}
        endpoints.append(e)
    return {
        "metadata": {"name": name, "resourceVersion": "1"},
        "ports": [{"name": port_name, "port": port}],
        "endpoints": endpoints,
    }


class TestReadyUrls:
    def test_ready_and_unknown_count_not_ready_does_not(self) -> None:
        s = eps("a", ("10.0.0.1", True), ("10.0.0.2", None), ("10.0.0.3", False))
        assert ready_urls([s], "http") == ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]

    def test_port_by_number_ipv6_and_scheme(self) -> None:
        s = eps("a", ("fd00::1", True), port=9000, port_name="metrics")
        assert ready_urls([s], "9000", "https") == ["https://[fd00::1]:9000"]
        assert ready_urls([s], "http") == []

    def test_many_slices_are_merged(self) -> None:
        assert ready_urls([eps("a", ("10.0.0.1", True)), eps("b", ("10.0.0.2", True))], "http") == [
            "http://10.0.0.1:8000",
            "http://10.0.0.2:8000",
        ]


async def test_list_then_watch_follows_changes() -> None:
    watch_lines = [
        {
            "type": "ADDED",
            "object": eps("b", ("10.0.0.2", True)) | {"metadata": {"name": "b", "resourceVersion": "6"}},
        },
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
        {"type": "DELETED", "object": {"metadata": {"name": "a", "resourceVersion": "8"}}},
    ]
    seen_requests: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen_requests.append(str(request.url))
        assert request.headers["authorization"] == "Bearer tok"
        assert request.url.params["labelSelector"] == "kubernetes.io/service-name=oss"
        if request.url.params.get("watch") != "1":
            return httpx.Response(
                200, json={"metadata": {"resourceVersion": "5"}, "items": [eps("a", ("10.0.0.1", True))]}
            )
        if request.url.params["resourceVersion"] == "5":
            return httpx.Response(200, content="\n".join(json.dumps(x) for x in watch_lines).encode())
        await asyncio.sleep(60)  # a quiet watch: nothing changes until the test ends
        return httpx.Response(200, content=b"")

    changes: list[list[str]] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    watch = ServiceWatch(
        client,
        KubeAuth("https://api", token="tok"),
        ("llm", "oss", "http"),
        "http",
        lambda k, u: changes.append(u),
    )
    task = asyncio.create_task(watch.run())
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(changes) >= 3:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.aclose()
    assert changes[:3] == [
        ["http://10.0.0.1:8000"],
        ["http://10.0.0.1:8000", "http://10.0.0.2:8000"],
        ["http://10.0.0.2:8000"],
    ]
    assert "/apis/discovery.k8s.io/v1/namespaces/llm/endpointslices" in seen_requests[0]


def test_kubeconfig_with_token(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        json.dumps(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {"server": "https://127.0.0.1:6443/", "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "u", "user": {"token": "abc"}}],
            }
        )
    )
    auth = kubeconfig_auth(str(path))
    assert auth.server == "https://127.0.0.1:6443"
    assert auth.verify is False
    assert auth.headers() == {"authorization": "Bearer abc"}
    assert "abc" not in repr(auth)


def test_kubeconfig_problems_are_reported(tmp_path: Path) -> None:
    from gptoss_operator.router.endpointslices import KubeConfigError

    path = tmp_path / "config"
    path.write_text("current-context: missing\ncontexts: []\nclusters: []\n")
    with pytest.raises(KubeConfigError, match="cannot use kubeconfig"):
        kubeconfig_auth(str(path))
