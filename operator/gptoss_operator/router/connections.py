"""Client connection limits: a header timeout, a keep-alive idle timeout and a connection cap.

uvicorn alone times out nothing before a connection's first request: its keep-alive timer is
armed only after a response, and any byte cancels it. A client that connects and never sends a
request, or sends its head one byte at a time (slowloris), holds a file descriptor forever; with
the common 1,024-descriptor limit, about a thousand such sockets lock every client out (the
accept loop fails with EMFILE). ``guarded_protocol`` subclasses uvicorn's httptools protocol:

* **header timeout** (``server.connections.headerTimeout``): a request head must be complete
  within this time of the connection opening, or of its first byte after a keep-alive pause;
* **idle timeout** (``server.connections.idleTimeout``): a keep-alive connection with no
  request in progress is closed after this long;
* **head size** (``server.connections.maxHeaderBytes``): a head still incomplete after this
  many bytes gets a 431 in the OpenAI error shape and the connection is closed;
* **cap** (``server.connections.max``, default derived from ``RLIMIT_NOFILE``): when it is
  reached, the connection that has waited longest *without a request in progress* is closed
  to make room (idle ones are shed first); if every connection is busy, the new one gets a 503
  in the OpenAI error shape and is closed.

Each closure is counted (``gptoss_router_connections_closed_total{reason}``,
``gptoss_router_connections_rejected_total{reason}``); ``gptoss_router_connections_open`` is
the current count. The settings are read per connection, so a reload applies to new ones.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gptoss_operator.router.config import ConnectionLimits
from gptoss_operator.router.errors import error_body
from gptoss_operator.router.metrics import RouterMetrics

# Descriptors kept back from the cap: listening socket, log files, scrape and Kubernetes
# clients. Each proxied request also holds one upstream connection, hence the halving.
_RESERVED_FDS = 64
# How long input is read and dropped after an error answer, before the close.
_LINGER_SECONDS = 2.0

_BUSY_503 = error_body(
    "this router is at its connection limit and every connection is busy; retry shortly",
    "service_unavailable",
    "too_many_connections",
)
_REJECT = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + b"retry-after: 1\r\ncontent-length: "
    + str(len(_BUSY_503)).encode()
    + b"\r\n\r\n"
    + _BUSY_503
)

_HEAD_431 = error_body(
    "the request head is larger than this router accepts (server.connections.maxHeaderBytes)",
    "invalid_request_error",
    "request_header_fields_too_large",
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    + b"connection: close\r\ncontent-length: "
    + str(len(_HEAD_431)).encode()
    + b"\r\n\r\n"
    + _HEAD_431
)


def default_max_connections() -> int:
    """Half of what the descriptor limit leaves after a reserve (each request may need two)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(16, (soft - _RESERVED_FDS) // 2)


class ConnectionGuard:
    """Counts connections and keeps, oldest first, those without a request in progress."""

    def __init__(self, metrics: RouterMetrics, limits: Callable[[], ConnectionLimits]) -> None:
        self.metrics = metrics
        self.limits = limits
        self.default_max = default_max_connections()
        self.open = 0
        self.waiting: dict[GuardedProtocol, None] = {}  # insertion order = oldest first

    def max_connections(self) -> int:
        configured = self.limits().max
        return configured if configured is not None else self.default_max

    def admit(self, conn: GuardedProtocol) -> bool:
        self.open += 1
        self.metrics.connections_open.set(self.open)
        if self.open <= self.max_connections():
            return True
        if self.waiting:
            oldest = next(iter(self.waiting))
            oldest.shed("evicted")
            return True
        self.metrics.connections_rejected.labels("limit").inc()
        return False

    def closed(self) -> None:
        self.open -= 1
        self.metrics.connections_open.set(self.open)


class GuardedProtocol(HttpToolsProtocol):
    guard: ConnectionGuard  # set on the per-app subclass made by guarded_protocol

    # Per-connection state (class defaults; uvicorn owns __init__).
    _timer: asyncio.TimerHandle | None = None
    _phase = "head"  # head: waiting for a request head; busy: request in progress; idle: keep-alive
    _head_bytes = 0  # bytes received while the head is incomplete
    _head_size = 0  # size of the parsed head (URL + header lines)
    _gone = False  # closed, closing or refused: nothing more to arm
    _counted = False
    _discarding = False  # answered with an error: input is read and dropped until the close

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._counted = True
        if not self.guard.admit(self):
            self._gone = True
            transport.write(_REJECT)
            transport.close()
            return
        self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        self._stop_waiting()
        if self._counted:
            self._counted = False
            self.guard.closed()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._phase == "idle":
            self._wait_for_head()  # a new request started: its head has headerTimeout
        super().data_received(data)
        if self._phase == "head" and not self._gone:
            # Still no complete head: bound what it may cost (httptools buffers it).
            self._head_bytes += len(data)
            if self._head_bytes > self.guard.limits().max_header_bytes:
                self._too_large()

    def on_message_begin(self) -> None:
        self._head_size = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        self._phase = "busy"
        if self._head_size > self.guard.limits().max_header_bytes:
            # The whole head arrived in one read: refuse it before any request starts.
            self._too_large()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._discarding:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._discarding:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None and not self._gone:
            # uvicorn armed its keep-alive timer: no request in progress. Ours replaces it
            # (counted, and reloadable).
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
            self._arm("idle", self.guard.limits().idle_timeout, "idle_timeout")

    # --- helpers ------------------------------------------------------------------------
    def _wait_for_head(self) -> None:
        self._head_bytes = 0
        self._arm("head", self.guard.limits().header_timeout, "header_timeout")

    def _arm(self, phase: str, seconds: float, reason: str) -> None:
        self._stop_waiting()
        self._phase = phase
        self._timer = self.loop.call_later(seconds, self.shed, reason)
        self.guard.waiting[self] = None

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.guard.waiting.pop(self, None)

    def _too_large(self) -> None:
        self._stop_waiting()
        self._gone = True
        self.guard.metrics.connections_closed.labels("header_too_large").inc()
        self._answer_and_linger(_TOO_LARGE)

    def _answer_and_linger(self, response: bytes) -> None:
        """Send ``response``, then read and drop input for a moment before closing: closing
        with unread input makes the kernel send a reset, which can destroy the answer before
        the client reads it (nginx's lingering_close does the same)."""
        self._discarding = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)

    def shed(self, reason: str) -> None:
        """Close a connection that has no request in progress."""
        self._stop_waiting()
        if not self._gone:
            self._gone = True
            self.guard.metrics.connections_closed.labels(reason).inc()
            self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to this app's guard."""
    attrs: dict[str, Any] = {"guard": guard}
    return type("RouterHttpProtocol", (GuardedProtocol,), attrs)
