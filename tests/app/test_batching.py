"""The batcher knows nothing of payloads: batches close at max size or max wait, one in flight, bounded, errors to all.

No test measures time: a wait that should not happen is caught by a guard far longer than any run needs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from app.batch_items import Batched, QueueFullError, ShuttingDownError
from app.batching import Batcher
from app.metrics import Metrics

GUARD_S = 30.0  # a batcher that waits for max_wait (600 s below) instead of leaving at once fails here
LONG_WAIT_MS = 600_000.0


class FakeBatchFunction:
    """Records batch sizes; answers each item with itself doubled; can fail or hold until released."""

    def __init__(self, fail: bool = False, hold: bool = False) -> None:
        self.sizes: list[int] = []
        self.fail = fail
        self.concurrent = 0
        self.max_concurrent = 0
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._lock = threading.Lock()

    def __call__(self, items: list[Any]) -> list[Any]:
        with self._lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            self.release.wait(GUARD_S)
            if self.fail:
                raise RuntimeError("model exploded")
            self.sizes.append(len(items))
            return [item * 2 for item in items]
        finally:
            with self._lock:
                self.concurrent -= 1


def _batcher(run: Any, metrics: Metrics | None = None, **knobs: Any) -> Batcher:
    knobs = {"max_batch_size": 4, "max_wait_ms": 5, "max_queue": 100, **knobs}
    return Batcher(run, executor=ThreadPoolExecutor(1), metrics=metrics or Metrics(), **knobs)  # type: ignore[arg-type]


async def _submit(batcher: Batcher, items: list[Any]) -> list[asyncio.Future]:
    async with batcher.admit(len(items)) as admission:
        return admission.submit(items)


async def _guarded(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, GUARD_S)


def _scenario(run: Any, body: Any, metrics: Metrics | None = None, **knobs: Any) -> Any:
    async def main() -> Any:
        batcher = _batcher(run, metrics, **knobs)
        batcher.start()
        try:
            return await body(batcher)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_batch_closes_at_max_size_and_each_item_gets_its_own_output() -> None:
    run = FakeBatchFunction()

    async def body(batcher: Batcher) -> list[Batched]:
        futures = [future for i in range(10) for future in await _submit(batcher, [i])]
        return await _guarded(asyncio.gather(*futures))

    results = _scenario(run, body, max_batch_size=4, max_wait_ms=LONG_WAIT_MS)
    assert run.sizes == [4, 4, 2]
    assert [result.value for result in results] == [i * 2 for i in range(10)]
    assert [result.batch_size for result in results] == [4] * 8 + [2] * 2


def test_a_lone_item_on_an_idle_batcher_does_not_wait() -> None:
    run = FakeBatchFunction()

    async def body(batcher: Batcher) -> Batched:
        return await _guarded((await _submit(batcher, [1]))[0])

    result = _scenario(run, body, max_wait_ms=LONG_WAIT_MS)  # nothing else is on its way: no reason to wait
    assert run.sizes == [1] and result.batch_size == 1


def test_a_batch_waits_for_admitted_items_still_being_prepared() -> None:
    run = FakeBatchFunction()

    async def body(batcher: Batcher) -> list[Batched]:
        first = await _submit(batcher, [1])
        async with batcher.admit(1) as admission:  # a second request was admitted and is being decoded
            await asyncio.sleep(0)
            second = admission.submit([2])
        return await _guarded(asyncio.gather(*first, *second))

    results = _scenario(run, body, max_wait_ms=LONG_WAIT_MS)
    assert run.sizes == [2]  # one forward for both
    assert [result.batch_size for result in results] == [2, 2]


def test_a_batch_leaves_after_max_wait_without_the_late_item() -> None:
    run = FakeBatchFunction()

    async def body(batcher: Batcher) -> None:
        async with batcher.admit(1):  # admitted, but its item comes only after the first batch has run
            first = await _submit(batcher, [1])
            await _guarded(asyncio.gather(*first))
        await _guarded(asyncio.gather(*await _submit(batcher, [2])))

    _scenario(run, body, max_wait_ms=20)
    assert run.sizes == [1, 1]


def test_an_admission_that_ends_unsubmitted_gives_its_room_back_and_ends_the_wait() -> None:
    run = FakeBatchFunction()

    async def body(batcher: Batcher) -> int:
        with pytest.raises(ValueError, match="decode failed"):
            async with batcher.admit(2) as admission:
                waiting = admission.submit([1])
                raise ValueError("decode failed")  # the second item will never come
        await _guarded(asyncio.gather(*waiting))
        async with batcher.admit(3):  # all the room is back
            return batcher.max_queue

    assert _scenario(run, body, max_wait_ms=LONG_WAIT_MS, max_queue=3) == 3
    assert run.sizes == [1]


def test_only_one_batch_runs_at_a_time() -> None:
    run = FakeBatchFunction()

    async def body(batcher: Batcher) -> None:
        futures = [future for i in range(12) for future in await _submit(batcher, [i])]
        await _guarded(asyncio.gather(*futures))

    _scenario(run, body, max_batch_size=2, max_wait_ms=0)
    assert run.max_concurrent == 1
    assert sum(run.sizes) == 12


def test_errors_reach_every_waiter_and_the_batcher_goes_on() -> None:
    run = FakeBatchFunction(fail=True)

    async def body(batcher: Batcher) -> tuple[list, Batched]:
        failed = await _guarded(asyncio.gather(*await _submit(batcher, [1, 2]), return_exceptions=True))
        run.fail = False
        later = await _guarded((await _submit(batcher, [3]))[0])
        return failed, later

    failed, later = _scenario(run, body)
    assert all(isinstance(error, RuntimeError) for error in failed)
    assert later.value == 6


def test_a_full_queue_refuses_the_whole_request_at_once() -> None:
    run = FakeBatchFunction(hold=True)

    async def body(batcher: Batcher) -> int:
        with pytest.raises(QueueFullError):
            await _submit(batcher, [1, 2, 3, 4])
        accepted = await _submit(batcher, [1, 2, 3])
        with pytest.raises(QueueFullError):
            await _submit(batcher, [9])
        run.release.set()
        done = len(await _guarded(asyncio.gather(*accepted)))
        async with batcher.admit(3):  # items being prepared count against the bound too
            with pytest.raises(QueueFullError):
                await _submit(batcher, [1])
        return done

    assert _scenario(run, body, max_queue=3) == 3


def test_a_dead_batcher_fails_its_waiters_and_refuses_new_work() -> None:
    class BrokenMetrics(Metrics):
        def __init__(self) -> None:
            super().__init__()
            self.batch_size = SimpleNamespace(observe=self._explode)  # type: ignore[assignment]

        @staticmethod
        def _explode(value: float) -> None:
            raise OSError("metrics disk full")

    async def main() -> tuple[object, bool]:
        batcher = _batcher(FakeBatchFunction(), BrokenMetrics(), max_batch_size=1, max_wait_ms=0)
        batcher.start()
        try:
            futures = await _submit(batcher, [1, 2])
            outcomes = await _guarded(asyncio.gather(*futures, return_exceptions=True))
            with pytest.raises(ShuttingDownError):
                await _submit(batcher, [3])
            return outcomes[1], batcher.alive
        finally:
            await batcher.stop()

    second, alive = asyncio.run(main())
    assert isinstance(second, ShuttingDownError)  # queued behind the failure: answered, not left hanging
    assert alive is False


def test_submitting_more_than_admitted_is_a_programming_error() -> None:
    async def body(batcher: Batcher) -> None:
        async with batcher.admit(1) as admission:
            with pytest.raises(ValueError, match="2 items submitted on an admission of 1"):
                admission.submit([1, 2])

    _scenario(FakeBatchFunction(), body)
