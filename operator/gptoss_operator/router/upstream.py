"""One attempt against one upstream endpoint: open it, classify what went wrong.

An attempt *succeeds* once the upstream answered with a status the client should see and (for
streams) its first body chunk arrived; nothing has reached the client before that, so any
failure up to that point may fall back. ``AttemptFailure.kind`` names the fallback trigger
(``connectError``, ``timeout``, ``5xx``, ``429``); ``None`` means "not a reason to fall back".
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gptoss_operator.router.config import FailureKind, Timeouts
from gptoss_operator.router.pool import (
    Pool,
    Response,
    UnsafeHeaderError,
    UpstreamClosedError,
    UpstreamConnectError,
    UpstreamConnectTimeout,
)
from gptoss_operator.router.selection import Attempt

# Retry-After is honoured up to this long: a provider asking for an hour is treated as "down
# for five minutes", after which passive health gets to look again.
MAX_RETRY_AFTER = 300.0
# How much of a failed upstream's error body is kept to show the client.
_MAX_ERROR_BODY = 64 * 1024


@dataclass(slots=True)
class UpstreamAnswer:
    status: int
    content_type: bytes
    body: bytes
    retry_after: bytes | None = None


class AttemptFailure(Exception):
    def __init__(
        self,
        kind: FailureKind | None,
        reason: str,
        *,
        answer: UpstreamAnswer | None = None,
        retry_after: float | None = None,
        eject_now: bool = False,
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.answer = answer
        self.retry_after = retry_after
        # Passive health ejects at once (not after failuresToEject) for failures that are
        # certain: no connection (refused or timed out) and 429 (docs/router.md, "Fallback").
        self.eject_now = eject_now


def upstream_url(attempt: Attempt, path: str) -> str:
    """``path`` is the API path below /v1, e.g. ``/chat/completions``."""
    if attempt.backend.external:
        return attempt.endpoint.url + path
    return attempt.endpoint.url + "/v1" + path


def request_headers(attempt: Attempt, request_id: str) -> list[tuple[str, str]]:
    headers = [
        ("content-type", "application/json"),
        # Identity keeps the SSE bytes forwardable as they are: a gzip-encoded stream could not be
        # inspected and forwarded one event at a time.
        ("accept-encoding", "identity"),
        ("user-agent", "gptoss-router"),
        ("x-request-id", request_id),
    ]
    key = attempt.backend.api_key
    if key is not None:
        if attempt.backend.flavor.auth_header == "api-key":
            headers.append(("api-key", key))
        else:
            headers.append(("authorization", "Bearer " + key))
    return headers


def parse_retry_after(value: str | None, now_epoch: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now_epoch is None else now_epoch)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Upstream:
    """An open upstream response whose first chunk has arrived (streams) or whole body (not)."""

    __slots__ = ("_iter", "body", "content_type", "first", "response", "status")

    def __init__(self, response: Response, first: bytes, it: AsyncIterator[bytes] | None) -> None:
        self.response = response
        self.status = response.status
        self.content_type = (response.header(b"content-type") or "application/json").encode("latin-1")
        self.first = first
        self.body = first
        self._iter = it

    async def rest(self, idle: float) -> AsyncIterator[bytes]:
        """The remaining chunks as they arrive; TimeoutError when one takes longer than ``idle``."""
        if self._iter is None:
            return
        # The timeout covers only the wait for the upstream's next chunk: time the caller
        # spends handing a chunk to a slow client is not upstream idleness.
        it = self._iter
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await anext(it)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk

    async def aclose(self) -> None:
        self.response.close()


async def open_attempt(
    pool: Pool,
    attempt: Attempt,
    *,
    path: str,
    body: bytes,
    request_id: str,
    timeouts: Timeouts,
    stream: bool,
) -> Upstream:
    """Send the request and wait for the first byte (streams) or whole body; raise AttemptFailure."""
    response: Response | None = None
    try:
        async with asyncio.timeout(timeouts.first_byte):
            response = await pool.post(
                upstream_url(attempt, path),
                request_headers(attempt, request_id),
                body,
                connect_timeout=timeouts.connect,
            )
            status = response.status
            if status == 429 or status >= 500:
                raw = await _read_bounded(response)
                response.close()
                retry_header = response.header(b"retry-after")
                answer = UpstreamAnswer(
                    status,
                    (response.header(b"content-type") or "application/json").encode("latin-1"),
                    raw,
                    retry_header.encode("latin-1") if retry_header else None,
                )
                if status == 429:
                    raise AttemptFailure(
                        FailureKind.RATE_LIMITED,
                        "429 rate limited",
                        answer=answer,
                        retry_after=parse_retry_after(retry_header),
                        eject_now=True,
                    )
                raise AttemptFailure(FailureKind.SERVER_ERROR, f"HTTP {status}", answer=answer)
            if not stream or status != 200:
                return Upstream(response, await response.read(), None)
            it = aiter(response.chunks())
            first = b""
            try:
                while not first:
                    first = await anext(it)
            except StopAsyncIteration:
                return Upstream(response, first, None)
            return Upstream(response, first, it)
    except AttemptFailure:
        raise
    except TimeoutError:
        _close(response)
        raise AttemptFailure(FailureKind.TIMEOUT, f"no first byte within {timeouts.first_byte:g}s") from None
    except UpstreamConnectTimeout as e:
        # A connect timeout is a `timeout` (the trigger covers "connect took longer than
        # timeouts.connect"), so `fallback.on: [timeout]` falls back on it; like a refused
        # connection it ejects the endpoint at once.
        raise AttemptFailure(FailureKind.TIMEOUT, str(e), eject_now=True) from None
    except UpstreamConnectError as e:
        raise AttemptFailure(FailureKind.CONNECT_ERROR, str(e), eject_now=True) from None
    except UnsafeHeaderError as e:
        # Nothing was sent; not a reason to try another backend with the same headers.
        raise AttemptFailure(None, str(e)) from None
    except UpstreamClosedError as e:
        # The connection broke before the answer was complete (dropped, reset, bad framing):
        # no byte has reached the client, so it is treated like a connect error.
        _close(response)
        raise AttemptFailure(FailureKind.CONNECT_ERROR, str(e)) from None
    except BaseException:
        _close(response)
        raise


async def _read_bounded(response: Response) -> bytes:
    out = bytearray()
    async for chunk in response.chunks():
        out += chunk
        if len(out) >= _MAX_ERROR_BODY:
            break
    return bytes(out[:_MAX_ERROR_BODY])


def _close(response: Response | None) -> None:
    if response is not None:
        response.close()
