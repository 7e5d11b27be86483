"""Raw ASGI plumbing shared by the router's endpoints: types, bounded body reads, error replies.

The router is a plain ASGI callable (no framework): for a proxy whose whole job is moving
bytes, a framework's request/response objects only add per-request allocations
(docs/router.md, "Server choice").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gptoss_operator.router.errors import BadRequestError, BodyTooLargeError, RouterError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, or BodyTooLargeError as soon as it is known to exceed ``limit``."""
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                declared = int(v)
            except ValueError:
                raise BadRequestError("invalid Content-Length header") from None
            if declared > limit:
                raise BodyTooLargeError(_too_large(declared, limit))
            break
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise BodyTooLargeError(_too_large(len(body), limit))
        return bytes(body)
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequestError("the client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(_too_large(size, limit))
        parts.append(chunk)
    return b"".join(parts)


def _too_large(size: int, limit: int) -> str:
    return f"the request body ({size} bytes) is larger than this router accepts ({limit} bytes)"


async def send_json_bytes(
    send: Send,
    status: int,
    body: bytes,
    *,
    request_id: str | None = None,
    backend: str | None = None,
    content_type: bytes = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    if backend is not None and backend != "none":
        headers.append((b"x-gptoss-backend", backend.encode()))
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, err: RouterError, *, request_id: str | None = None, backend: str | None = None
) -> None:
    await send_json_bytes(send, err.status, err.body(), request_id=request_id, backend=backend)
