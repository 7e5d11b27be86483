"""Bad requests get OpenAI-shaped errors and the router keeps serving; provider keys from files."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Router, Sim, cluster_backend, config, external_backend, route

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "errors"}]


@pytest.fixture
def router(start_router: StartRouter, local: Sim) -> Router:
    return start_router(config(route(MODEL, cluster_backend("local", local)), maxBodyBytes=4096))


def still_serving(router: Router) -> None:
    c = router.openai()
    assert c.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content


def test_malformed_json(router: Router) -> None:
    r = httpx.post(
        router.url + "/v1/chat/completions",
        content=b'{"model": "gpt-oss-20b", "messages": [',
        headers={"content-type": "application/json"},
        trust_env=False,
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert "not valid JSON" in err["message"]
    assert set(err) == {"message", "type", "param", "code"}
    r = httpx.post(router.url + "/v1/chat/completions", json=["a", "list"], trust_env=False)
    assert r.status_code == 400
    assert "JSON object" in r.json()["error"]["message"]
    r = httpx.post(router.url + "/v1/chat/completions", json={"messages": []}, trust_env=False)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model"
    still_serving(router)


def test_unknown_model_is_404(router: Router) -> None:
    c = router.openai()
    with pytest.raises(openai.NotFoundError) as e:
        c.chat.completions.create(model="gpt-oss-999b", messages=MESSAGES)
    assert e.value.code == "model_not_found"
    assert "gpt-oss-999b" in e.value.message
    still_serving(router)


def test_oversized_body_is_413(router: Router, local: Sim) -> None:
    c = router.openai()
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 10_000}])
    assert e.value.status_code == 413
    assert e.value.code == "request_too_large"
    assert "4096" in e.value.message
    assert local.stats()["requests"] == 0
    # Chunked upload without Content-Length is bounded too.
    r = httpx.post(
        router.url + "/v1/chat/completions",
        content=iter([b"{" + b" " * 3000, b" " * 3000 + b"}"]),
        trust_env=False,
    )
    assert r.status_code == 413
    still_serving(router)


def test_missing_key_file_is_a_clear_503_then_keys_are_read_and_rotated(
    start_router: StartRouter, hosted: Sim, tmp_path
) -> None:
    key_file = tmp_path / "provider-key"
    router = start_router(
        config(route(MODEL, external_backend("hosted", hosted, apiKeyFile=str(key_file), flavor="openai")))
    )
    c = router.openai("client-key")
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert e.value.status_code == 503
    assert f"API key file {key_file} is missing" in e.value.message
    assert hosted.stats()["requests"] == 0

    secret1, secret2 = "sk-test-first-0123456789", "sk-test-second-9876543210"
    key_file.write_text(secret1 + "\n")
    router.wait_for(
        lambda: router.metric("gptoss_router_api_key_reads_total", backend="hosted", result="ok") >= 1
    )
    assert c.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
    tmp = tmp_path / "k.tmp"
    tmp.write_text(secret2)
    tmp.replace(key_file)  # a Secret update swaps the file
    time.sleep(0.5)
    c.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert hosted.stats()["keys_seen"] == [secret1, secret2]  # never the client's own key
    logs = router.logs()
    assert secret1 not in logs
    assert secret2 not in logs
    assert "client-key" not in logs
