"""Byte-exact passthrough: what a client reads via the router equals what it reads directly."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Router, Sim, cluster_backend, config, route

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "byte exact"}]}


@pytest.fixture
def router(start_router: StartRouter, local: Sim) -> Router:
    return start_router(config(route(MODEL, cluster_backend("local", local))))


def fetch(url: str, path: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        r = c.post(url + path, json=body)
        return r.status_code, r.headers["content-type"], r.content


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**CHAT, "stream": True}),
        ("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}),
        ("/v1/chat/completions", CHAT),
        ("/v1/completions", {"model": MODEL, "prompt": "byte exact", "stream": True}),
        ("/v1/responses", {"model": MODEL, "input": "byte exact", "stream": True}),
        ("/v1/responses", {"model": MODEL, "input": "byte exact"}),
    ],
    ids=["chat-stream", "chat-stream-usage", "chat", "completions-stream", "responses-stream", "responses"],
)
def test_router_bytes_equal_direct_bytes(router: Router, local: Sim, path: str, body: dict[str, Any]) -> None:
    direct = fetch(local.url, path, body)
    via = fetch(router.url, path, body)
    assert via == direct
    if body.get("stream"):
        assert via[1].startswith("text/event-stream")
        if path != "/v1/responses":
            assert via[2].endswith(b"data: [DONE]\n\n")
        else:
            assert b"event: response.completed\n" in via[2]


def test_stream_is_not_buffered(router: Router, local: Sim) -> None:
    # Each token is 150 ms apart upstream; the client must see the first event long before the
    # stream ends (a buffering proxy would deliver everything at once).
    local.configure(itl=0.15, output_tokens=6, reasoning_tokens=0)
    import time

    with httpx.Client(trust_env=False, timeout=10) as c:
        t0 = time.monotonic()
        with c.stream("POST", router.url + "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
            arrivals = [time.monotonic() - t0 for _ in r.iter_raw()]
    assert len(arrivals) >= 6
    assert arrivals[0] < 0.5
    assert arrivals[-1] > 0.7
