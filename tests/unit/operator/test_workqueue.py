"""WorkQueue: dedup while queued, re-run when added during processing, delayed adds, workers."""

from __future__ import annotations

import asyncio

import pytest

from gptoss_operator.controller.workqueue import WorkQueue

KEY = ("llm", "oss")
OTHER = ("llm", "oss-20b")


async def drain(q: WorkQueue[tuple[str, str]]) -> list[tuple[str, str]]:
    """Everything ready to be picked up now, processed and marked done in order."""
    seen: list[tuple[str, str]] = []
    while True:
        try:
            key = await asyncio.wait_for(q.get(), timeout=0.02)
        except TimeoutError:
            return seen
        seen.append(key)
        q.done(key)


class TestAdd:
    async def test_a_key_added_twice_while_queued_is_processed_once(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.add(KEY)
        assert len(q) == 1
        assert await drain(q) == [KEY]

    async def test_keys_come_out_in_order(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.add(OTHER)
        assert await drain(q) == [KEY, OTHER]

    async def test_added_while_processing_runs_again_after_done(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        key = await q.get()
        q.add(KEY)
        q.add(KEY)
        assert len(q) == 1  # dirty, not queued: no second worker may take it
        assert await drain(q) == []
        q.done(key)
        assert await drain(q) == [KEY]

    async def test_done_without_new_adds_does_not_requeue(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.done(await q.get())
        assert len(q) == 0
        assert await drain(q) == []

    async def test_other_keys_are_not_held_back_by_a_processing_key(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        await q.get()
        q.add(OTHER)
        assert await drain(q) == [OTHER]


class TestAddAfter:
    async def test_enqueued_after_the_delay(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add_after(KEY, 0.05)
        assert len(q) == 0
        await asyncio.sleep(0.06)
        assert await drain(q) == [KEY]

    async def test_earlier_request_wins(self):
        loop = asyncio.get_running_loop()
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add_after(KEY, 0.05)
        q.add_after(KEY, 60)
        await asyncio.sleep(0.06)
        assert await drain(q) == [KEY]
        q.add_after(KEY, 60)
        q.add_after(KEY, 0.05)
        start = loop.time()
        key = await asyncio.wait_for(q.get(), timeout=1)
        assert key == KEY
        assert loop.time() - start < 1

    async def test_fires_once(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add_after(KEY, 0.01)
        q.add_after(KEY, 0.02)
        await asyncio.sleep(0.06)
        assert await drain(q) == [KEY]

    async def test_forget_cancels(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add_after(KEY, 0.02)
        q.add_after(OTHER, 0.02)
        q.forget(KEY)
        await asyncio.sleep(0.06)
        assert await drain(q) == [OTHER]

    async def test_forget_without_pending_retry_is_a_no_op(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.forget(KEY)
        assert await drain(q) == [KEY]


class TestRunWorkers:
    async def test_a_failing_handler_is_retried_and_workers_survive(self, monkeypatch):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        retries: list[tuple[tuple[str, str], float]] = []
        real_add_after = q.add_after

        def fast_retry(key: tuple[str, str], delay: float) -> None:
            retries.append((key, delay))
            real_add_after(key, 0.01)  # the real backoff, shortened for the test

        monkeypatch.setattr(q, "add_after", fast_retry)
        calls: list[tuple[str, str]] = []
        finished = asyncio.Event()

        async def handle(key: tuple[str, str]) -> None:
            calls.append(key)
            if calls.count(key) == 1 and key == KEY:
                raise RuntimeError("apiserver unavailable")
            if calls.count(KEY) == 2 and OTHER in calls:
                finished.set()

        workers = asyncio.create_task(q.run_workers(1, handle))
        q.add(KEY)
        q.add(OTHER)
        await asyncio.wait_for(finished.wait(), timeout=2)
        workers.cancel()
        with pytest.raises(asyncio.CancelledError):
            await workers
        assert calls == [KEY, OTHER, KEY]
        assert retries == [(KEY, 1.0)]  # the first step of the backoff

    async def test_a_key_is_never_handled_twice_at_once(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        running: set[tuple[str, str]] = set()
        overlaps: list[tuple[str, str]] = []
        handled: list[tuple[str, str]] = []
        gate = asyncio.Event()

        async def handle(key: tuple[str, str]) -> None:
            if key in running:
                overlaps.append(key)
            running.add(key)
            handled.append(key)
            await gate.wait()
            running.discard(key)

        workers = asyncio.create_task(q.run_workers(4, handle))
        q.add(KEY)
        await asyncio.sleep(0.01)
        q.add(KEY)  # arrives while the first reconcile runs: must wait for it
        await asyncio.sleep(0.01)
        assert handled == [KEY]
        gate.set()
        await asyncio.sleep(0.01)
        workers.cancel()
        with pytest.raises(asyncio.CancelledError):
            await workers
        assert (handled, overlaps) == ([KEY, KEY], [])


class TestBackoff:
    def test_doubles_per_failure_up_to_five_minutes_and_resets_on_success(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        delays = [q.failed(KEY) for _ in range(12)]
        assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
        assert delays[-1] == 300.0
        assert q.failed(OTHER) == 1.0  # per key
        q.succeeded(KEY)
        assert q.failed(KEY) == 1.0

    def test_forget_drops_the_backoff(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.failed(KEY)
        q.forget(KEY)
        assert q.failures(KEY) == 0

    async def test_repeated_failures_log_one_line_each_after_the_first(self, caplog):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add_after = lambda key, delay: q.add(key)  # type: ignore[method-assign]
        seen = 0
        done = asyncio.Event()

        async def handle(key: tuple[str, str]) -> None:
            nonlocal seen
            seen += 1
            if seen == 4:
                done.set()
                return
            raise RuntimeError("boom")

        workers = asyncio.create_task(q.run_workers(1, handle))
        q.add(KEY)
        await asyncio.wait_for(done.wait(), timeout=2)
        workers.cancel()
        with pytest.raises(asyncio.CancelledError):
            await workers
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert len(tracebacks) == 1
        assert len([r for r in caplog.records if "3 in a row" in r.getMessage()]) == 1
        assert q.failures(KEY) == 0  # the success reset it
