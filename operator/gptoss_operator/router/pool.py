"""A minimal HTTP/1.1 client pool for the upstream data path: asyncio protocols + httptools.

Why not httpx here: httpcore's pool re-scans (and polls the socket of) every pooled connection
for every queued request, so cost grows with concurrency squared. Measured through this router
at 64 concurrent clients: 70 requests/s and ~15 ms CPU per request, with
``_assign_requests_to_connections`` / ``is_idle`` on top of the profile (docs/router.md). This
pool keeps a LIFO list of idle connections per (host, port, tls): O(1) per request. httpx is
still used where the rate is low (/metrics scrapes, the Kubernetes API).

Scope, on purpose: POST with an in-memory body, HTTP/1.1, keep-alive, chunked or
content-length responses, TLS for providers. Response bytes are delivered as they arrive;
reading pauses when more than ``_HIGH_WATER`` bytes wait for a slow client (backpressure).
Abandoning a response before its end aborts the connection, which is how vLLM learns that
the client went away.

Errors: ``UpstreamConnectError`` (could not connect), ``UpstreamClosedError`` (connection lost
or unparseable answer). A request that fails on a *reused* keep-alive connection before any
response byte is retried once on a new connection (the server closed an idle connection).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 1 << 20  # pause reading from upstream above this many buffered bytes
_LOW_WATER = 1 << 18


class UpstreamError(Exception):
    pass


class UpstreamConnectError(UpstreamError):
    pass


class UpstreamConnectTimeout(UpstreamConnectError):
    """The connection (TCP, and TLS for https) did not complete within the connect timeout."""


class UpstreamClosedError(UpstreamError):
    pass


class UnsafeHeaderError(ValueError):
    """A header the router was about to send holds CR, LF or NUL (it would split the head)."""


_HEAD_BREAKERS = frozenset("\r\n\x00")


def _check_head_field(text: str, what: str) -> str:
    # Defence in depth: every value written into a request head is checked here, whatever
    # validated it before (key files, request ids, configuration), so none can inject a header.
    if not _HEAD_BREAKERS.isdisjoint(text):
        raise UnsafeHeaderError(f"refusing to send {what} with a CR, LF or NUL in it")
    return text


@lru_cache(maxsize=1024)
def split_url(url: str) -> tuple[str, int, bool, str, str]:
    """host, port, tls, request target, Host header value."""
    u = urlsplit(url)
    tls = u.scheme == "https"
    host = u.hostname or ""
    port = u.port or (443 if tls else 80)
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    default = (tls and port == 443) or (not tls and port == 80)
    hostport = f"[{host}]" if ":" in host else host
    return host, port, tls, target, hostport if default else f"{hostport}:{port}"


class Response:
    """One upstream response: status and headers first, then body chunks as they arrive."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_exc",
        "_waiter",
        "complete",
        "got_bytes",
        "headers",
        "status",
    )

    def __init__(self, conn: _Conn) -> None:
        self._conn: _Conn | None = conn
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.got_bytes = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def header(self, name: bytes) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("latin-1")
        return None

    # --- producer side (the protocol) ---
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _push(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and self._conn is not None:
            self._conn.pause()
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if not self.complete and self._exc is None:
            self._exc = exc
            self._wake()

    # --- consumer side ---
    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def wait_headers(self) -> None:
        while self.status == 0:
            if self._exc is not None:
                raise self._exc
            await self._wait()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                data = self._chunks.popleft()
                self._buffered -= len(data)
                if self._buffered < _LOW_WATER and self._conn is not None:
                    self._conn.resume()
                yield data
            elif self.complete:
                return
            elif self._exc is not None:
                raise self._exc
            else:
                await self._wait()

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    def close(self) -> None:
        """Release: a complete response's connection went back to the pool already; an
        incomplete one is aborted (the upstream sees the client leave)."""
        conn, self._conn = self._conn, None
        if conn is not None and not self.complete:
            conn.abort()


class _Conn(asyncio.Protocol):
    def __init__(self, pool: Pool, key: tuple[str, int, bool]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        r = self.response
        if r is None:
            self.abort()  # bytes nobody asked for: the connection is not reusable
            return
        r.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            r._fail(UpstreamClosedError(f"invalid HTTP response: {e}"))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        r = self.response
        if r is not None and not r.complete:
            r._fail(UpstreamClosedError("connection lost" + (f": {exc}" if exc else "")))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        r = self.response
        assert r is not None
        r.status = self.parser.get_status_code()
        r._wake()

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._push(body)

    def on_message_complete(self) -> None:
        r = self.response
        assert r is not None
        r.complete = True
        r._conn = None
        self.response = None
        if self.parser.should_keep_alive() and not self.closed:
            self.resume()
            self.pool._release(self)
        else:
            self.abort()
        r._wake()

    # helpers
    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Pool:
    """Keep-alive connections per (host, port, tls); lifespan-owned like an httpx client."""

    def __init__(self, *, max_idle_per_host: int = 512, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[tuple[str, int, bool], list[_Conn]] = {}
        self._max_idle = max_idle_per_host
        self._ssl = ssl_context or ssl.create_default_context()

    def _release(self, conn: _Conn) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.abort()

    async def _connect(self, key: tuple[str, int, bool], timeout: float) -> _Conn:
        host, port, tls = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, proto = await loop.create_connection(
                    lambda: _Conn(self, key),
                    host,
                    port,
                    ssl=self._ssl if tls else None,
                    server_hostname=host if tls else None,
                )
        except TimeoutError:
            raise UpstreamConnectTimeout(f"connect timeout after {timeout:g}s") from None
        except OSError as e:
            raise UpstreamConnectError(f"connect error: {e.strerror or e}") from None
        return proto

    async def post(
        self, url: str, headers: list[tuple[str, str]], body: bytes, *, connect_timeout: float
    ) -> Response:
        """Send; return once the status line and headers arrived (the caller bounds the wait)."""
        host, port, tls, target, hostport = split_url(url)
        key = (host, port, tls)
        _check_head_field(target + hostport, "the request target")
        head = [f"POST {target} HTTP/1.1\r\nhost: {hostport}\r\ncontent-length: {len(body)}\r\n"]
        head.extend(
            f"{_check_head_field(k, 'a header name')}: {_check_head_field(v, f'header {k}')}\r\n"
            for k, v in headers
        )
        head.append("\r\n")
        payload = "".join(head).encode("latin-1") + body
        for _ in range(2):
            idle = self._idle.get(key)
            conn = None
            while idle:
                candidate = idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, connect_timeout)
            response = Response(conn)
            conn.response = response
            assert conn.transport is not None
            conn.transport.write(payload)
            try:
                await response.wait_headers()
            except UpstreamClosedError:
                if reused and not response.got_bytes:
                    continue  # the server had closed this idle connection: try a fresh one
                raise
            except BaseException:
                response.close()
                raise
            return response
        raise UpstreamClosedError("connection lost twice before any response")  # pragma: no cover

    def close(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                c.abort()
        self._idle.clear()
