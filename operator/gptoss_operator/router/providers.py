"""Provider flavors: the request/response quirks of each OpenAI-compatible gpt-oss server.

Pure functions. The router speaks vLLM's current dialect to clients (``reasoning_effort`` or
``reasoning.effort`` accepted on input, ``reasoning`` in message/delta output) and rewrites a
request only as far as the chosen backend needs, so that falling back from vLLM to a provider
never turns into a 400 (docs/router.md "Provider flavors" lists the quirks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EffortStyle = Literal["reasoning_effort", "reasoning_object"]


@dataclass(frozen=True, slots=True)
class Flavor:
    name: str
    # How the provider wants chat reasoning effort: top-level `reasoning_effort` (vLLM, Groq,
    # Cerebras, ...) or `reasoning: {effort}` (OpenRouter).
    effort_style: EffortStyle = "reasoning_effort"
    # The field the provider puts reasoning text in (message / delta). vLLM removed
    # `reasoning_content` in favour of `reasoning` (vllm#27752); Baseten still sends the old one.
    response_reasoning_field: str = "reasoning"
    # The field assistant messages may carry back on input; None drops it (Groq 400s on
    # `reasoning_content`, Cerebras documents neither).
    input_reasoning_field: str | None = "reasoning"
    # Parameters the provider refuses with a 400.
    drop_params: frozenset[str] = field(default_factory=frozenset)
    # Header carrying the key: "authorization" (Bearer) or Azure's "api-key".
    auth_header: Literal["authorization", "api-key"] = "authorization"
    supports_responses: bool = True
    # Whether `stream_options.include_usage` is understood (so the router may ask for usage).
    stream_usage: bool = True


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("vllm"),
        Flavor("openai"),
        Flavor("openrouter", effort_style="reasoning_object"),
        Flavor("groq", input_reasoning_field=None),
        Flavor(
            "cerebras",
            input_reasoning_field=None,
            drop_params=frozenset(
                {"frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls", "service_tier"}
            ),
            supports_responses=False,
        ),
        Flavor("together"),
        Flavor("fireworks"),
        Flavor("baseten", response_reasoning_field="reasoning_content", supports_responses=False),
        Flavor("bedrock"),
        Flavor("azure", auth_header="api-key"),
    )
}

_REASONING_INPUT_FIELDS = ("reasoning", "reasoning_content")


def effort_of(body: dict[str, Any]) -> str | None:
    """The requested reasoning effort in either spelling (top-level wins)."""
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        return effort
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        return str(reasoning["effort"])
    return None


def normalize_chat_request(body: dict[str, Any], flavor: Flavor, model: str) -> dict[str, Any]:
    """A chat/completions (or legacy completions) body rewritten for ``flavor``; input untouched."""
    out = {k: v for k, v in body.items() if k not in flavor.drop_params}
    out["model"] = model
    effort = effort_of(body)
    if effort is not None:
        out.pop("reasoning_effort", None)
        if isinstance(out.get("reasoning"), dict):
            rest = {k: v for k, v in out["reasoning"].items() if k != "effort"}
            if rest and flavor.effort_style == "reasoning_object":
                out["reasoning"] = {**rest, "effort": effort}
            else:
                out.pop("reasoning")
        if flavor.effort_style == "reasoning_effort":
            out["reasoning_effort"] = effort
        else:
            out["reasoning"] = {**out.get("reasoning", {}), "effort": effort}
    messages = out.get("messages")
    if isinstance(messages, list):
        out["messages"] = [_input_message(m, flavor) for m in messages]
    return out


def _input_message(message: Any, flavor: Flavor) -> Any:
    if not isinstance(message, dict) or not any(f in message for f in _REASONING_INPUT_FIELDS):
        return message
    text = next((message[f] for f in _REASONING_INPUT_FIELDS if message.get(f) is not None), None)
    out = {k: v for k, v in message.items() if k not in _REASONING_INPUT_FIELDS}
    if flavor.input_reasoning_field is not None and text is not None:
        out[flavor.input_reasoning_field] = text
    return out


def normalize_responses_request(body: dict[str, Any], flavor: Flavor, model: str) -> dict[str, Any]:
    """A /v1/responses body for ``flavor``: model id rewrite, effort always as ``reasoning.effort``."""
    out = {k: v for k, v in body.items() if k not in flavor.drop_params}
    out["model"] = model
    effort = out.pop("reasoning_effort", None)
    if isinstance(effort, str):
        current = out.get("reasoning")
        reasoning: dict[str, Any] = current if isinstance(current, dict) else {}
        out["reasoning"] = {**reasoning, "effort": effort}
    return out


def rewrites_response(flavor: Flavor) -> bool:
    """True when responses from this flavor must be rewritten to the router's dialect."""
    return flavor.response_reasoning_field != "reasoning"


def rewrite_response_bytes(data: bytes, flavor: Flavor) -> bytes:
    """Rename the provider's reasoning key to ``reasoning`` in a JSON body or SSE event.

    A byte-level key rename is exact for JSON: inside a JSON string every quote is escaped, so
    the byte sequence ``"reasoning_content":`` can only be an object key. Events that already
    carry ``reasoning`` are left alone to avoid duplicate keys.
    """
    old = b'"' + flavor.response_reasoning_field.encode() + b'":'
    if old not in data or b'"reasoning":' in data:
        return data
    return data.replace(old, b'"reasoning":')
