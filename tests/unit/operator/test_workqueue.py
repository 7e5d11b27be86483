"""WorkQueue: dedup while queued, re-run when added during processing, two lanes, delayed adds,
workers."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptoss_operator.controller.workqueue import WorkQueue

KEY = ("llm", "oss")
OTHER = ("llm", "oss-20b")
THIRD = ("llm", "oss-120b")


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


class TestLanes:
    async def test_a_follow_up_is_taken_before_work_queued_earlier(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.add(OTHER)
        q.add(THIRD, follow_up=True)
        assert await drain(q) == [THIRD, KEY, OTHER]

    async def test_follow_ups_keep_their_order(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(OTHER, follow_up=True)
        q.add(KEY, follow_up=True)
        assert await drain(q) == [OTHER, KEY]

    async def test_a_queued_key_that_gets_a_follow_up_moves_ahead_and_runs_once(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.add(OTHER)
        q.add(OTHER, follow_up=True)
        assert len(q) == 2
        assert q.queued() == {KEY, OTHER}
        assert await drain(q) == [OTHER, KEY]

    async def test_a_follow_up_is_not_moved_back_by_an_ordinary_add(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.add(OTHER, follow_up=True)
        q.add(OTHER)
        assert await drain(q) == [OTHER, KEY]

    async def test_a_key_queued_again_after_it_ran_takes_its_new_place(self):
        # Its first entry, left behind in the slow lane when it moved ahead, must not bring it
        # out before keys that were queued before its new entry.
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.add(KEY, follow_up=True)
        key = await q.get()
        q.done(key)
        q.add(OTHER)
        q.add(KEY)
        assert await drain(q) == [OTHER, KEY]

    async def test_a_follow_up_while_processing_runs_next_in_the_fast_lane(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        key = await q.get()
        q.add(OTHER)
        q.add(KEY)
        q.add(KEY, follow_up=True)
        q.done(key)
        assert await drain(q) == [KEY, OTHER]

    async def test_a_plain_add_while_processing_runs_after_earlier_work(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        key = await q.get()
        q.add(OTHER)
        q.add(KEY)
        q.done(key)
        assert await drain(q) == [OTHER, KEY]

    async def test_a_delayed_follow_up_lands_in_the_fast_lane(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        q.add(KEY)
        q.add_after(OTHER, 0.01, follow_up=True)
        await asyncio.sleep(0.03)
        assert await drain(q) == [OTHER, KEY]

    async def test_a_waiting_worker_wakes_for_a_follow_up(self):
        q: WorkQueue[tuple[str, str]] = WorkQueue()
        waiting = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        q.add(KEY, follow_up=True)
        assert await asyncio.wait_for(waiting, timeout=1) == KEY


class Reference:
    """The lanes as two plain lists: what WorkQueue must do, without its bookkeeping."""

    def __init__(self) -> None:
        self.lanes: tuple[list[str], list[str]] = ([], [])
        self.processing: set[str] = set()
        self.dirty: dict[str, bool] = {}  # key -> follow-up

    def add(self, key: str, follow_up: bool) -> None:
        if key in self.processing:
            self.dirty[key] = self.dirty.get(key, False) or follow_up
        elif key in self.lanes[0] or (key in self.lanes[1] and not follow_up):
            return
        else:
            if key in self.lanes[1]:
                self.lanes[1].remove(key)
            self.lanes[0 if follow_up else 1].append(key)

    def take(self) -> str | None:
        for lane in self.lanes:
            if lane:
                key = lane.pop(0)
                self.processing.add(key)
                return key
        return None

    def done(self, key: str) -> None:
        self.processing.discard(key)
        if key in self.dirty:
            self.add(key, self.dirty.pop(key))


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from("abc"), st.booleans()),
        st.tuples(st.just("take"), st.just(""), st.just(False)),
        st.tuples(st.just("done"), st.sampled_from("abc"), st.just(False)),
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(OPS)
def test_the_lanes_behave_like_two_plain_lists(ops: list[tuple[str, str, bool]]) -> None:
    async def run() -> None:
        q: WorkQueue[str] = WorkQueue()
        ref = Reference()
        for op, key, follow_up in ops:
            if op == "add":
                q.add(key, follow_up=follow_up)
                ref.add(key, follow_up)
            elif op == "take":
                expected = ref.take()
                if expected is None:
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(q.get(), timeout=0)
                else:
                    assert await asyncio.wait_for(q.get(), timeout=1) == expected
            elif key in ref.processing:
                q.done(key)
                ref.done(key)
            assert q.queued() == set(ref.lanes[0]) | set(ref.lanes[1])
            assert len(q) == len(q.queued()) + len(ref.dirty)

    asyncio.run(run())


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

        def retry_now(key: tuple[str, str], delay: float, *, follow_up: bool = False) -> None:
            q.add(key, follow_up=follow_up)

        q.add_after = retry_now  # type: ignore[method-assign]
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
