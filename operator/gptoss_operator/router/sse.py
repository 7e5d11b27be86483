"""Server-sent events: framing, usage extraction, dropping the usage chunk the router asked for.

Pure. The router forwards upstream bytes unchanged, one complete event at a time; it only
*looks* at events (a substring test, then ``json.loads`` for the few that carry usage) and drops
exactly one event, the usage chunk, when the client did not ask for it (LiteLLM PR #35290 does
the same so billing does not depend on a tokenizer guess).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_SEPARATORS = (b"\n\n", b"\r\n\r\n")


class EventFramer:
    """Splits a byte stream into complete SSE events (each with its blank-line terminator)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._buf + chunk if self._buf else chunk
        events: list[bytes] = []
        start = 0
        while True:
            cut = -1
            sep_len = 0
            for sep in _SEPARATORS:
                i = data.find(sep, start)
                if i >= 0 and (cut < 0 or i < cut):
                    cut, sep_len = i, len(sep)
            if cut < 0:
                break
            events.append(data[start : cut + sep_len])
            start = cut + sep_len
        self._buf = data[start:]
        return events

    def flush(self) -> bytes:
        """Whatever is left when the upstream ends (an unterminated last event)."""
        rest, self._buf = self._buf, b""
        return rest


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


def usage_from_object(obj: Any) -> Usage | None:
    """Usage from a chat/completions body, a Responses object, or a Responses stream event."""
    if not isinstance(obj, dict):
        return None
    usage = obj.get("usage")
    if usage is None and isinstance(obj.get("response"), dict):
        usage = obj["response"].get("usage")
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Usage(_int(prompt), _int(completion), _int(reasoning))


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` payload of one event (multi-line data joined with newlines)."""
    lines = [ln for ln in event.splitlines() if ln.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(ln[5:].removeprefix(b" ") for ln in lines)


@dataclass(frozen=True, slots=True)
class Inspected:
    usage: Usage | None
    is_usage_chunk: bool  # a chat/completions usage-only chunk (``choices`` empty or null)


def inspect_event(event: bytes) -> Inspected:
    """Cheap for the common event: only events containing a usage object are parsed."""
    if b'"usage":{' not in event and b'"usage": {' not in event:
        return Inspected(None, False)
    payload = event_data(event)
    if payload is None:
        return Inspected(None, False)
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return Inspected(None, False)
    usage = usage_from_object(obj)
    chunk = (
        isinstance(obj, dict)
        and obj.get("object") in ("chat.completion.chunk", "text_completion")
        and not obj.get("choices")
        and usage is not None
    )
    return Inspected(usage, chunk)


def wants_usage_injection(body: dict[str, Any]) -> bool:
    """True when a streaming chat/completions request did not ask for usage itself."""
    if not body.get("stream"):
        return False
    opts = body.get("stream_options")
    return not (isinstance(opts, dict) and opts.get("include_usage"))


def with_usage_requested(body: dict[str, Any]) -> dict[str, Any]:
    opts = body.get("stream_options")
    merged = {**opts, "include_usage": True} if isinstance(opts, dict) else {"include_usage": True}
    return {**body, "stream_options": merged}
