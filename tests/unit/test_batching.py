"""The batcher: batches close at max size or max wait, one in flight, bounded queue, errors to all."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import torch

from app.batching import Batcher, QueueFullError, ShuttingDownError
from app.metrics import Metrics


class FakeModel:
    """Records batch sizes; returns scores that encode each image's first pixel."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.fail = fail
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()

    def __call__(self, batch: torch.Tensor, heads: set[str]) -> dict[str, torch.Tensor]:
        with self._lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("model exploded")
            self.sizes.append(batch.shape[0])
            marker = batch[:, 0, 0, 0].long()
            return {head: torch.nn.functional.one_hot(marker, 10).float() for head in heads}
        finally:
            with self._lock:
                self.concurrent -= 1


def _image(marker: int) -> torch.Tensor:
    tensor = torch.zeros(3, 4, 4)
    tensor[0, 0, 0] = marker
    return tensor


def _batcher(model: FakeModel, **knobs: float) -> Batcher:
    return Batcher(model, executor=ThreadPoolExecutor(1), metrics=Metrics(), **knobs)  # type: ignore[arg-type]


async def _run(
    model: FakeModel,
    jobs: list[tuple[int, frozenset[str], int]],
    *,
    max_batch_size: int = 4,
    max_wait_ms: float = 50,
    max_queue: int = 100,
) -> list:
    batcher = _batcher(model, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue)
    batcher.start()
    try:
        futures = [batcher.submit([_image(marker)], heads, top_k)[0] for marker, heads, top_k in jobs]
        return await asyncio.gather(*futures, return_exceptions=True)
    finally:
        await batcher.stop()


def test_batch_closes_at_max_size_and_each_job_gets_its_own_answer() -> None:
    model = FakeModel()
    both = frozenset({"imagenet", "cifar10"})
    jobs = [(i, both if i % 2 else frozenset({"imagenet"}), 1 + i % 3) for i in range(10)]
    results = asyncio.run(_run(model, jobs, max_batch_size=4, max_wait_ms=1000))
    assert model.sizes == [4, 4, 2]
    for (marker, heads, top_k), result in zip(jobs, results, strict=True):
        assert set(result.top) == heads
        for head in heads:
            assert len(result.top[head]) == top_k
            assert result.top[head][0] == (marker, 1.0)


def test_a_lone_image_on_an_idle_batcher_does_not_wait() -> None:
    model = FakeModel()
    started = time.monotonic()
    results = asyncio.run(_run(model, [(1, frozenset({"imagenet"}), 1)], max_wait_ms=500))
    assert model.sizes == [1]
    assert results[0].batch_size == 1
    assert time.monotonic() - started < 0.4  # nothing else was on its way: no reason to wait 500 ms


def test_a_batch_waits_for_images_still_being_decoded_up_to_max_wait() -> None:
    async def scenario(decode_s: float) -> tuple[list[int], float]:
        model = FakeModel()
        batcher = _batcher(model, max_batch_size=4, max_wait_ms=100, max_queue=10)
        batcher.start()
        try:
            started = time.monotonic()
            first = batcher.submit([_image(1)], frozenset({"imagenet"}), 1)
            batcher.reserve(1)  # a second request was admitted and is being decoded
            await asyncio.sleep(decode_s)
            second = batcher.enqueue([_image(2)], frozenset({"imagenet"}), 1)
            await asyncio.gather(*first, *second)
            return model.sizes, time.monotonic() - started
        finally:
            await batcher.stop()

    sizes, _ = asyncio.run(scenario(decode_s=0.02))
    assert sizes == [2]  # it arrived within max_wait: one forward for both
    sizes, elapsed = asyncio.run(scenario(decode_s=0.3))
    assert sizes == [1, 1] and elapsed >= 0.3  # the first image left after max_wait, the second on its own


def test_a_released_reservation_ends_the_wait() -> None:
    async def scenario() -> float:
        batcher = _batcher(FakeModel(), max_batch_size=4, max_wait_ms=2000, max_queue=10)
        batcher.start()
        try:
            started = time.monotonic()
            batcher.reserve(1)
            waiting = batcher.submit([_image(1)], frozenset({"imagenet"}), 1)
            await asyncio.sleep(0.05)
            batcher.release(1)  # its decode failed: nothing more is coming
            await asyncio.gather(*waiting)
            return time.monotonic() - started
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) < 1.0


def test_only_one_batch_runs_at_a_time() -> None:
    model = FakeModel(delay=0.02)
    asyncio.run(_run(model, [(i, frozenset({"imagenet"}), 1) for i in range(12)], max_batch_size=2, max_wait_ms=0))
    assert model.max_concurrent == 1
    assert sum(model.sizes) == 12


def test_model_errors_reach_every_waiter_and_the_batcher_goes_on() -> None:
    async def scenario() -> tuple[list, object]:
        model = FakeModel(fail=True)
        batcher = _batcher(model, max_batch_size=4, max_wait_ms=5, max_queue=10)
        batcher.start()
        try:
            failed = await asyncio.gather(
                *batcher.submit([_image(1), _image(2)], frozenset({"imagenet"}), 1), return_exceptions=True
            )
            model.fail = False
            later = await batcher.submit([_image(3)], frozenset({"imagenet"}), 1)[0]
            return failed, later
        finally:
            await batcher.stop()

    failed, later = asyncio.run(scenario())
    assert all(isinstance(error, RuntimeError) for error in failed)
    assert later.top["imagenet"][0] == (3, 1.0)


def test_a_full_queue_refuses_the_whole_request_at_once() -> None:
    async def scenario() -> None:
        batcher = _batcher(FakeModel(), max_batch_size=4, max_wait_ms=5, max_queue=3)
        batcher.start()
        try:
            with pytest.raises(QueueFullError):
                batcher.submit([_image(i) for i in range(4)], frozenset({"imagenet"}), 1)
            accepted = batcher.submit([_image(i) for i in range(3)], frozenset({"imagenet"}), 1)
            with pytest.raises(QueueFullError):
                batcher.submit([_image(9)], frozenset({"imagenet"}), 1)
            assert len(await asyncio.gather(*accepted)) == 3
            batcher.reserve(3)  # images being decoded count against the bound too
            with pytest.raises(QueueFullError):
                batcher.reserve(1)
        finally:
            await batcher.stop()

    asyncio.run(scenario())


def test_a_dead_batcher_fails_its_waiters_and_refuses_new_work() -> None:
    class BrokenMetrics(Metrics):
        def __init__(self) -> None:
            super().__init__()
            self.batch_size = SimpleNamespace(observe=self._explode)  # type: ignore[assignment]

        @staticmethod
        def _explode(value: float) -> None:
            raise OSError("metrics disk full")

    async def scenario() -> tuple[object, bool]:
        batcher = Batcher(
            FakeModel(delay=0.05),
            executor=ThreadPoolExecutor(1),
            metrics=BrokenMetrics(),
            max_batch_size=1,
            max_wait_ms=0,
            max_queue=10,
        )
        batcher.start()
        try:
            futures = batcher.submit([_image(1), _image(2)], frozenset({"imagenet"}), 1)
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            with pytest.raises(ShuttingDownError):
                batcher.reserve(1)
            return outcomes[1], batcher.alive
        finally:
            await batcher.stop()

    second, alive = asyncio.run(scenario())
    assert isinstance(second, ShuttingDownError)  # queued behind the failure: answered, not left hanging
    assert alive is False
