"""The response names the model the client asked for, whichever backend answered: vLLM in the
cluster says ``gpt-oss-20b``, a hosted provider ``openai/gpt-oss-20b``; the client sees one name
(the backend is in the x-gptoss-backend header). Every other byte passes through unchanged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Sim, cluster_backend, config, external_backend, route

HOSTED_NAME = "openai/gpt-oss-20b"
CHAT: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "which model?"}]}


def post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as c:
        return c.post(url + path, json=body)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", CHAT),
        ("/v1/chat/completions", {**CHAT, "stream": True}),
        ("/v1/completions", {"model": MODEL, "prompt": "which model?", "stream": True}),
        ("/v1/responses", {"model": MODEL, "input": "which model?"}),
        ("/v1/responses", {"model": MODEL, "input": "which model?", "stream": True}),
    ],
    ids=["chat", "chat-stream", "completions-stream", "responses", "responses-stream"],
)
def test_a_hosted_answer_names_the_requested_model_and_is_otherwise_byte_exact(
    start_router: StartRouter, hosted: Sim, path: str, body: dict[str, Any]
) -> None:
    router = start_router(config(route(MODEL, external_backend("hosted", hosted, model=HOSTED_NAME))))
    direct = post(hosted.url, path, {**body, "model": HOSTED_NAME}).content
    assert f'"model":"{HOSTED_NAME}"'.encode() in direct  # the provider's own name
    via = post(router.url, path, body)
    assert via.headers["x-gptoss-backend"] == "hosted"
    assert hosted.stats()["last_body"]["model"] == HOSTED_NAME  # the provider still gets its name
    assert HOSTED_NAME.encode() not in via.content
    assert via.content == direct.replace(f'"model":"{HOSTED_NAME}"'.encode(), f'"model":"{MODEL}"'.encode())


def test_the_same_request_reads_the_same_from_either_backend(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local, weight=1),
                external_backend("hosted", hosted, weight=1, model=HOSTED_NAME),
            )
        )
    )
    client = router.openai()
    seen: dict[str, set[str]] = {}
    for _ in range(40):
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=CHAT["messages"])
        seen.setdefault(raw.headers["x-gptoss-backend"], set()).add(raw.parse().model)
        stream = client.chat.completions.create(model=MODEL, messages=CHAT["messages"], stream=True)
        seen.setdefault("stream", set()).update(chunk.model for chunk in stream)
        if {"local", "hosted"} <= set(seen):
            break
    assert seen == {"local": {MODEL}, "hosted": {MODEL}, "stream": {MODEL}}
