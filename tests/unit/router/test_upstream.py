"""One attempt against a real loopback server: how each outcome is classified for fallback."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Awaitable, Callable

import pytest

from devtools.ports import free_port
from gptoss_operator.router.config import BackendConfig, FailureKind, Timeouts
from gptoss_operator.router.load import Endpoint
from gptoss_operator.router.pool import Pool
from gptoss_operator.router.runtime import build_backend
from gptoss_operator.router.selection import Attempt
from gptoss_operator.router.upstream import (
    AttemptFailure,
    open_attempt,
    parse_retry_after,
    request_headers,
    upstream_url,
)
from tests.unit.router.conftest import Handler, read_request, reply

TIMEOUTS = Timeouts(connect=1, first_byte=0.3, idle=1)
Serve = Callable[[Handler], Awaitable[str]]


def attempt(url: str = "http://l:8000", external: bool = False, flavor: str = "openai") -> Attempt:
    if external:
        bc = BackendConfig.model_validate(
            {"name": "h", "external": {"baseURL": url + "/v1", "model": "m", "flavor": flavor}}
        )
        b = build_backend(bc, False)
        b.api_key = "sk-test"
        return Attempt(b, Endpoint(url + "/v1", external=True))
    bc = BackendConfig.model_validate({"name": "l", "cluster": {"endpoints": [url]}})
    return Attempt(build_backend(bc, False), Endpoint(url))


async def run(url: str, stream: bool = False, pool: Pool | None = None) -> tuple[int, bytes]:
    pool = pool or Pool()
    up = await open_attempt(
        pool,
        attempt(url),
        path="/chat/completions",
        body=b"{}",
        request_id="r1",
        timeouts=TIMEOUTS,
        stream=stream,
    )
    body = up.first
    async for chunk in up.rest(1.0):
        body += chunk
    await up.aclose()
    return up.status, body


def test_urls_and_headers() -> None:
    assert upstream_url(attempt(), "/responses") == "http://l:8000/v1/responses"
    assert upstream_url(attempt("http://h", external=True), "/responses") == "http://h/v1/responses"
    assert "authorization" not in dict(request_headers(attempt(), "r"))
    assert dict(request_headers(attempt(external=True), "r"))["authorization"] == "Bearer sk-test"
    azure = dict(request_headers(attempt(external=True, flavor="azure"), "r"))
    assert azure["api-key"] == "sk-test"
    assert "authorization" not in azure


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("100000") == 300.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after(date, now_epoch=1_000_000) == pytest.approx(10.0)


async def test_success_keeps_the_connection_and_client_errors_pass_through(serve: Serve) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            head, body = await read_request(reader)
            assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
            assert b"x-request-id: r1\r\n" in head
            assert body == b"{}"
            writer.write(reply(400 if b"bad" in head else 200, b'{"ok":1}'))
            await writer.drain()

    url = await serve(handler)
    pool = Pool()
    assert await run(url, pool=pool) == (200, b'{"ok":1}')
    assert await run(url, pool=pool) == (200, b'{"ok":1}')
    assert connections == 1, "keep-alive: the second request reused the connection"


@pytest.mark.parametrize(
    ("status", "headers", "kind"),
    [
        (500, {}, FailureKind.SERVER_ERROR),
        (503, {}, FailureKind.SERVER_ERROR),
        (429, {"retry-after": "4"}, FailureKind.RATE_LIMITED),
    ],
)
async def test_retryable_statuses(
    serve: Serve, status: int, headers: dict[str, str], kind: FailureKind
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply(status, b"upstream says no", headers))
        await writer.drain()

    with pytest.raises(AttemptFailure) as e:
        await run(await serve(handler))
    assert e.value.kind is kind
    assert e.value.answer is not None
    assert (e.value.answer.status, e.value.answer.body) == (status, b"upstream says no")
    if kind is FailureKind.RATE_LIMITED:
        assert e.value.retry_after == 4.0
        assert e.value.answer.retry_after == b"4"


async def test_connection_refused_and_dropped(serve: Serve) -> None:
    with pytest.raises(AttemptFailure) as e:
        await run(f"http://127.0.0.1:{free_port()}")
    assert e.value.kind is FailureKind.CONNECT_ERROR

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    with pytest.raises(AttemptFailure) as e:
        await run(await serve(drop))
    assert e.value.kind is FailureKind.CONNECT_ERROR
    assert "connection lost" in e.value.reason


async def test_first_byte_timeout_on_a_stream(serve: Serve) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(5)

    with pytest.raises(AttemptFailure) as e:
        await run(await serve(slow), stream=True)
    assert e.value.kind is FailureKind.TIMEOUT


async def test_chunked_stream_is_delivered_decoded_and_in_order(serve: Serve) -> None:
    async def events(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n"
        )
        for ev in (b"data: 1\n\n", b"data: [DONE]\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    assert await run(await serve(events), stream=True) == (200, b"data: 1\n\ndata: [DONE]\n\n")


async def test_stale_keepalive_connection_is_retried_on_a_fresh_one(serve: Serve) -> None:
    served = 0

    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(reply(200, b"{}"))
        await writer.drain()
        await asyncio.sleep(0.05)  # then close without saying so: keep-alive went stale

    url = await serve(one_shot)
    pool = Pool()
    assert (await run(url, pool=pool))[0] == 200
    await asyncio.sleep(0.2)
    assert (await run(url, pool=pool))[0] == 200
    assert served == 2


async def test_abandoning_a_stream_closes_the_upstream_connection(serve: Serve) -> None:
    closed = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(b"6\r\ndata: \r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            closed.set()

    pool = Pool()
    up = await open_attempt(
        pool,
        attempt(await serve(endless)),
        path="/x",
        body=b"{}",
        request_id="r",
        timeouts=TIMEOUTS,
        stream=True,
    )
    await up.aclose()
    await asyncio.wait_for(closed.wait(), 2)
