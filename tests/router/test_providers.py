"""Provider flavors end to end: fallback to a picky provider never turns into a 400."""

from __future__ import annotations

from typing import cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from tests.router.conftest import MODEL, StartRouter
from tests.support.procs import Sim, cluster_backend, config, external_backend, route

# An assistant turn carrying reasoning under the old vLLM name, as older clients send it back.
HISTORY = cast(
    "list[ChatCompletionMessageParam]",
    [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer", "reasoning_content": "old thoughts"},
        {"role": "user", "content": "second"},
    ],
)


def test_fallback_to_cerebras_like_provider_drops_refused_fields(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    local.configure(fail_status=503)
    hosted.configure(
        served_models=["gpt-oss-120b"],
        reject_params=["presence_penalty", "frequency_penalty"],
        reject_reasoning_content_input=True,
    )
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local),
                external_backend("hosted", hosted, weight=0, model="gpt-oss-120b", flavor="cerebras"),
            )
        )
    )
    c = router.openai()
    raw = c.chat.completions.with_raw_response.create(
        model=MODEL, messages=HISTORY, presence_penalty=0.5, reasoning_effort="high"
    )
    assert raw.headers["x-gptoss-backend"] == "hosted"
    sent = hosted.stats()["last_body"]
    assert sent["model"] == "gpt-oss-120b"
    assert "presence_penalty" not in sent
    assert sent["reasoning_effort"] == "high"
    assert all("reasoning_content" not in m and "reasoning" not in m for m in sent["messages"])
    # What vLLM got was the client's request with vLLM's own field name.
    assert local.stats()["last_body"]["messages"][1]["reasoning"] == "old thoughts"


def test_openrouter_effort_and_baseten_reasoning_field(
    start_router: StartRouter, hosted: Sim, hosted2: Sim
) -> None:
    hosted.configure(reasoning_field="reasoning_content")
    router = start_router(
        config(
            route(MODEL, external_backend("baseten", hosted, flavor="baseten")),
            route("gpt-oss-120b", external_backend("openrouter", hosted2, flavor="openrouter")),
        )
    )
    c = router.openai()
    msg = c.chat.completions.create(model=MODEL, messages=HISTORY[:1]).choices[0].message
    extra = msg.model_extra or {}
    assert extra["reasoning"] == "think0 think1 "
    assert "reasoning_content" not in extra
    deltas = [
        ch.choices[0].delta.model_extra or {}
        for ch in c.chat.completions.create(model=MODEL, messages=HISTORY[:1], stream=True)
        if ch.choices
    ]
    assert "".join(d.get("reasoning") or "" for d in deltas) == "think0 think1 "
    assert not any("reasoning_content" in d for d in deltas)

    c.chat.completions.create(model="gpt-oss-120b", messages=HISTORY[:1], reasoning_effort="low")
    sent = hosted2.stats()["last_body"]
    assert sent["reasoning"] == {"effort": "low"}
    assert "reasoning_effort" not in sent


def test_responses_skip_flavors_without_a_responses_api(
    start_router: StartRouter, local: Sim, hosted: Sim
) -> None:
    local.configure(fail_status=500)
    router = start_router(
        config(
            route(
                MODEL,
                cluster_backend("local", local),
                external_backend("hosted", hosted, weight=0, flavor="cerebras"),
            )
        )
    )
    c = router.openai()
    try:
        c.responses.create(model=MODEL, input="hi")
        raise AssertionError("expected the local 500")
    except openai.InternalServerError:
        pass
    assert hosted.stats()["requests"] == 0
