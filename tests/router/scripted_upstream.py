"""A raw HTTP/1.1 upstream on loopback whose bytes each test scripts, for behaviour the vLLM
simulator does not have (continuous usage stats, never completing a connect, ...).

It runs its own event loop in a background thread, so it serves a router *process* while the
test body stays synchronous. Every request head it reads is kept in ``heads``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable

from tests.unit.router.conftest import read_request

Handler = Callable[["ScriptedUpstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ScriptedUpstream:
    def __init__(self, handler: Handler) -> None:
        self.heads: list[bytes] = []
        self._handler = handler
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port: int = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await self._handler(self, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
                self._tasks.discard(task)

        self._server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def read(self, reader: asyncio.StreamReader) -> bytes:
        """One request; returns its body and records its head."""
        head, body = await read_request(reader)
        self.heads.append(head)
        return body

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def big_event_stream(events: int, size: int) -> bytes:
    """``events`` chat chunks of ``size`` bytes of content each, then ``data: [DONE]``."""
    out = []
    for i in range(events):
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": f"{i:06d}" + "x" * size}}],
        }
        out.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    return b"".join(out) + b"data: [DONE]\n\n"


_BIG = big_event_stream(128, 64 * 1024)  # 8 MB


async def serve_big_stream(
    up: ScriptedUpstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer every request with 8 MB of SSE events, as fast as the connection takes them."""
    while True:
        await up.read(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + f"content-length: {len(_BIG)}\r\n\r\n".encode()
        )
        for i in range(0, len(_BIG), 1 << 16):
            writer.write(_BIG[i : i + (1 << 16)])
            await writer.drain()
