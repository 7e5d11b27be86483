"""A raw HTTP/1.1 upstream on loopback whose bytes each test scripts, for behaviour the vLLM
simulator does not have (continuous usage stats, never completing a connect, ...).

It runs its own event loop in a background thread, so it serves a router *process* while the
test body stays synchronous. Every request head it reads is kept in ``heads``.
"""

from __future__ import annotations

import asyncio
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
