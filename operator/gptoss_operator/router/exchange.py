"""Per-request helpers for the proxy: body parsing, upstream encoding, ids, disconnects. No I/O
beyond the ASGI ``receive`` the disconnect watcher listens on."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from gptoss_operator.router import providers
from gptoss_operator.router.asgi import Receive
from gptoss_operator.router.errors import BadRequestError
from gptoss_operator.router.pool import UpstreamError
from gptoss_operator.router.runtime import BackendRuntime
from gptoss_operator.router.selection import Api
from gptoss_operator.router.sse import with_usage_requested


class DisconnectWatcher:
    """Cancels the request's task when the client goes away, so the upstream request is closed
    (vLLM aborts a request whose connection closes). Stopped before the final send so that
    uvicorn's end-of-response ``http.disconnect`` is not mistaken for a client leaving."""

    __slots__ = ("_task", "_watch", "disconnected")

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self.disconnected = False
        self._task = task
        self._watch: asyncio.Task[None] | None = asyncio.ensure_future(self._run(receive))

    async def _run(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if self._watch is not None:
                    self.disconnected = True
                    self._task.cancel()
                return

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequestError(f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        # json.loads recurses per nesting level; a body of 100,000 '[' raises this.
        raise BadRequestError("the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    return body


def encode_for(body: dict[str, Any], raw: bytes, b: BackendRuntime, api: Api, inject_usage: bool) -> bytes:
    """The bytes to send upstream: the client's own bytes whenever nothing needs rewriting."""
    model = b.upstream_model or body["model"]
    if api == "responses":
        new = providers.normalize_responses_request(body, b.flavor, model)
    else:
        new = providers.normalize_chat_request(body, b.flavor, model)
        if inject_usage and b.flavor.stream_usage:
            new = with_usage_requested(new)
    if new == body:
        return raw
    return json.dumps(new, ensure_ascii=False, separators=(",", ":")).encode()


def header_values(scope: dict[str, Any]) -> dict[str, list[str]]:
    """Lower-case name -> every value sent, in order: a repeated header keeps all its lines
    (residency matching must see each of them, not the last one)."""
    out: dict[str, list[str]] = {}
    for k, v in scope["headers"]:
        out.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
    return out


def request_id_of(scope: dict[str, Any]) -> str:
    for k, v in scope["headers"]:
        if k == b"x-request-id" and 0 < len(v) <= 128 and v.isascii():
            text = str(v.decode())
            if text.isprintable():  # it is sent upstream: no control characters
                return text
    return os.urandom(8).hex()


def stream_error_event(model: str, e: BaseException) -> bytes:
    if isinstance(e, TimeoutError):
        kind = "idle timeout"
    elif isinstance(e, UpstreamError):
        kind = "upstream connection lost"
    else:
        kind = "internal router error"
    payload = {
        "error": {
            "message": f"{kind} while streaming {model}",
            "type": "server_error",
            "param": None,
            "code": "stream_interrupted",
        }
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
