"""The router speaks the OpenAI API: the official client, sync and async, streaming and not,
chat, legacy completions and Responses, through the real router process to a simulator."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Router, Sim, cluster_backend, config, external_backend, route

CONTENT = "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 "
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def router(start_router: StartRouter, local: Sim, hosted: Sim) -> Router:
    # hosted has weight 0: it only takes fallback/overflow traffic, so answers come from local.
    return start_router(
        config(
            route(
                MODEL, cluster_backend("local", local, weight=1), external_backend("hosted", hosted, weight=0)
            )
        )
    )


def client(router: Router) -> openai.OpenAI:
    return router.openai()


def aclient(router: Router) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=router.base_url, api_key="unused", max_retries=0)


def test_chat_non_streaming_names_the_backend(router: Router, local: Sim) -> None:
    raw = client(router).chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert raw.headers["x-gptoss-backend"] == "local"
    assert raw.headers["x-request-id"]
    completion = raw.parse()
    assert completion.choices[0].message.content == CONTENT
    assert (completion.choices[0].message.model_extra or {})["reasoning"] == "think0 think1 "
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 10
    assert local.stats()["requests"] == 1
    assert router.metric("gptoss_router_requests_total", route=MODEL, backend="local", status="200") == 1
    assert router.metric("gptoss_router_tokens_total", backend="local", kind="completion") == 10


def test_chat_streaming_strips_the_usage_chunk_it_asked_for(router: Router, local: Sim) -> None:
    chunks = list(client(router).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CONTENT
    assert all(c.usage is None for c in chunks), "client did not ask for usage"
    assert all(c.choices for c in chunks)
    # ...but the router asked upstream, so tokens are still counted.
    assert local.stats()["last_body"]["stream_options"] == {"include_usage": True}
    assert router.metric("gptoss_router_tokens_total", backend="local", kind="completion") == 10
    assert router.metric("gptoss_router_time_to_first_token_seconds_count", backend="local") == 1


def test_chat_streaming_keeps_usage_the_client_asked_for(router: Router) -> None:
    chunks = list(
        client(router).chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10


async def test_async_chat_streaming_and_not(router: Router) -> None:
    async with aclient(router) as c:
        stream = await c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
        assert text == CONTENT
        done = await c.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert done.choices[0].message.content == CONTENT


def test_responses_non_streaming(router: Router, local: Sim) -> None:
    raw = client(router).responses.with_raw_response.create(
        model=MODEL, input="hello", reasoning={"effort": "low"}
    )
    assert raw.headers["x-gptoss-backend"] == "local"
    resp = raw.parse()
    assert resp.output_text == CONTENT
    assert resp.usage is not None
    assert resp.usage.output_tokens_details.reasoning_tokens == 2
    assert local.stats()["by_path"] == {"/v1/responses": 1}
    assert router.metric("gptoss_router_tokens_total", backend="local", kind="reasoning") == 2


def test_responses_streaming_events(router: Router) -> None:
    events = list(client(router).responses.create(model=MODEL, input="hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == CONTENT


async def test_async_responses_streaming_and_not(router: Router) -> None:
    async with aclient(router) as c:
        stream = await c.responses.create(model=MODEL, input="hello", stream=True)
        kinds = [e.type async for e in stream]
        assert kinds[-1] == "response.completed"
        resp = await c.responses.create(model=MODEL, input="hello")
        assert resp.output_text == CONTENT


def test_legacy_completions(router: Router) -> None:
    c = client(router)
    assert c.completions.create(model=MODEL, prompt="hi").choices[0].text == CONTENT
    streamed = "".join(
        ch.choices[0].text for ch in c.completions.create(model=MODEL, prompt="hi", stream=True)
    )
    assert streamed == CONTENT


def test_models_come_from_the_config(router: Router) -> None:
    c = client(router)
    assert [m.id for m in c.models.list()] == [MODEL]
    assert c.models.retrieve(MODEL).id == MODEL


def test_health_readiness_and_metrics_endpoints(router: Router) -> None:
    assert router.http.get("/healthz").json() == {"status": "ok"}
    ready = router.http.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["routes"] == [MODEL]
    assert ready["generation"] == 1
    text = router.http.get("/metrics").text
    for name in (
        "gptoss_router_config_generation",
        "gptoss_router_backend_healthy",
        "gptoss_router_scrape_age_seconds",
        "gptoss_router_pool_saturated",
    ):
        assert name in text
    router.wait_for(lambda: router.metric("gptoss_router_scrapes_total", result="ok") > 0, what="a scrape")
    assert router.metric("gptoss_router_scrape_age_seconds", backend="local") < 2


def test_unknown_path_and_wrong_method(router: Router) -> None:
    r = router.http.get("/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = router.http.get("/v1/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert isinstance(httpx.get(router.url + "/healthz").json(), dict)
