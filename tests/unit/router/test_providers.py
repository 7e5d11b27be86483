"""Provider flavors: request rewriting per flavor and the response key rename."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gptoss_operator.router import providers
from gptoss_operator.router.providers import (
    FLAVORS,
    effort_of,
    normalize_chat_request,
    normalize_responses_request,
    rewrite_response_bytes,
    rewrites_response,
)

BODY: dict[str, Any] = {
    "model": "gpt-oss-120b",
    "reasoning_effort": "high",
    "presence_penalty": 0.2,
    "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": "because"},
    ],
}


def test_effort_in_either_spelling() -> None:
    assert effort_of({"reasoning_effort": "low"}) == "low"
    assert effort_of({"reasoning": {"effort": "medium"}}) == "medium"
    assert effort_of({}) is None


@pytest.mark.parametrize(
    "name", ["vllm", "openai", "groq", "together", "fireworks", "bedrock", "azure", "baseten"]
)
def test_top_level_effort_flavors(name: str) -> None:
    out = normalize_chat_request(BODY, FLAVORS[name], "provider/model")
    assert out["model"] == "provider/model"
    assert out["reasoning_effort"] == "high"
    assert "reasoning" not in out


def test_openrouter_wants_a_reasoning_object() -> None:
    out = normalize_chat_request(BODY, FLAVORS["openrouter"], "openai/gpt-oss-120b")
    assert out["reasoning"] == {"effort": "high"}
    assert "reasoning_effort" not in out
    back = normalize_chat_request({"model": "x", "reasoning": {"effort": "low"}}, FLAVORS["vllm"], "x")
    assert back == {"model": "x", "reasoning_effort": "low"}


def test_input_reasoning_is_renamed_or_dropped() -> None:
    vllm = normalize_chat_request(BODY, FLAVORS["vllm"], "m")
    assert vllm["messages"][1] == {"role": "assistant", "content": "a", "reasoning": "because"}
    groq = normalize_chat_request(BODY, FLAVORS["groq"], "m")
    assert groq["messages"][1] == {"role": "assistant", "content": "a"}
    assert BODY["messages"][1]["reasoning_content"] == "because", "input not mutated"


def test_cerebras_drops_refused_parameters() -> None:
    out = normalize_chat_request(
        {**BODY, "logit_bias": {"1": 2}, "service_tier": "auto"}, FLAVORS["cerebras"], "m"
    )
    assert not {"presence_penalty", "logit_bias", "service_tier"} & set(out)
    assert out["reasoning_effort"] == "high"


def test_vllm_body_without_quirks_is_unchanged() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}], "stream": True}
    assert normalize_chat_request(body, FLAVORS["vllm"], "m") == body


def test_responses_effort_always_as_reasoning_object() -> None:
    out = normalize_responses_request(
        {"model": "a", "input": "q", "reasoning_effort": "low"}, FLAVORS["openai"], "b"
    )
    assert out == {"model": "b", "input": "q", "reasoning": {"effort": "low"}}


class TestResponseRename:
    def test_only_flavors_with_the_old_field_rewrite(self) -> None:
        assert rewrites_response(FLAVORS["baseten"])
        assert not rewrites_response(FLAVORS["vllm"])

    def test_key_renamed_but_text_inside_strings_untouched(self) -> None:
        text = 'say "reasoning_content": literally'
        data = json.dumps({"delta": {"reasoning_content": "x", "content": text}}).encode()
        out = json.loads(rewrite_response_bytes(data, FLAVORS["baseten"]))
        assert out == {"delta": {"reasoning": "x", "content": text}}

    def test_no_duplicate_keys(self) -> None:
        data = b'{"reasoning":"a","reasoning_content":"a"}'
        assert rewrite_response_bytes(data, FLAVORS["baseten"]) == data


class TestRenameModel:
    NAME = providers.model_value("gpt-oss-120b")

    def test_every_model_key_gets_the_requested_name(self) -> None:
        data = b'{"id":"r","model":"openai/gpt-oss-120b","response":{"model" : "x/y"}}'
        assert providers.rename_model(data, self.NAME) == (
            b'{"id":"r","model":"gpt-oss-120b","response":{"model" : "gpt-oss-120b"}}'
        )

    def test_text_that_mentions_model_is_left_alone(self) -> None:
        # Inside a JSON string quotes are escaped: `\"model\": \"a\"` is content, not a key.
        event = b'data: {"model":"a\\"b","choices":[{"delta":{"content":"the \\"model\\": \\"z\\""}}]}\n\n'
        assert providers.rename_model(event, self.NAME) == (
            b'data: {"model":"gpt-oss-120b","choices":[{"delta":{"content":"the \\"model\\": \\"z\\""}}]}\n\n'
        )

    def test_bytes_without_a_model_key_are_returned_as_they_are(self) -> None:
        data = b"data: [DONE]\n\n"
        assert providers.rename_model(data, self.NAME) is data

    def test_non_ascii_names_are_written_as_utf8(self) -> None:
        assert (
            providers.rename_model(b'{"model":"m"}', providers.model_value("modèle"))
            == '{"model":"modèle"}'.encode()
        )
