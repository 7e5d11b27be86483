"""A client that goes away cancels the upstream request (vLLM then aborts the sequence)."""

from __future__ import annotations

import httpx

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Router, Sim, cluster_backend, config, route

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "disconnect"}]}


def test_stream_disconnect_cancels_upstream(start_router: StartRouter, local: Sim) -> None:
    local.configure(itl=0.2, output_tokens=100)
    router: Router = start_router(config(route(MODEL, cluster_backend("local", local))))
    with (
        httpx.Client(trust_env=False, timeout=10) as c,
        c.stream("POST", router.url + "/v1/chat/completions", json={**BODY, "stream": True}) as r,
    ):
        first = next(r.iter_raw())
        assert first.startswith(b"data: ")
    # 100 tokens at 0.2 s would take 20 s; the simulator must see the cancel within a second or so.
    router.wait_for(lambda: local.stats()["cancelled"] == 1, timeout=3, what="upstream cancel")
    assert local.stats()["completed"] == 0
    assert local.stats()["in_flight"] == 0
    router.wait_for(lambda: router.metric("gptoss_router_requests_total", status="499") == 1)
    assert router.metric("gptoss_router_upstream_in_flight", backend="local") == 0


def test_non_streaming_disconnect_cancels_upstream(start_router: StartRouter, local: Sim) -> None:
    local.configure(latency=20)
    router: Router = start_router(config(route(MODEL, cluster_backend("local", local))))
    with httpx.Client(trust_env=False, timeout=0.5) as c:
        try:
            c.post(router.url + "/v1/chat/completions", json=BODY)
            raise AssertionError("expected a client timeout")
        except httpx.ReadTimeout:
            pass
    router.wait_for(lambda: local.stats()["cancelled"] == 1, timeout=3, what="upstream cancel")
    assert local.stats()["completed"] == 0
