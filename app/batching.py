"""Adaptive batching that knows nothing of payloads: a bounded queue, one batch in flight, futures per item.

Room is admitted before the caller spends work on its items (`async with batcher.admit(n)`), so a request
that would overflow is refused at once. A batch waits for more items (up to max_wait after its first) only
while admitted items are still being prepared: an idle server never waits for company that is not coming.
The batch function gets a list of items and returns one output per item; its outcome, answers or error,
reaches every waiter.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.metrics import Metrics

log = logging.getLogger("visionserve")

In = TypeVar("In")
Out = TypeVar("Out")


class QueueFullError(Exception):
    """The queue cannot take these items now; the client should retry later."""


class ShuttingDownError(QueueFullError):
    """The batcher stopped (shutdown or failure); the client should retry on another worker."""


@dataclass(frozen=True)
class Batched(Generic[Out]):
    """One item's output and what its batch cost it."""

    value: Out
    queue_s: float
    inference_s: float
    batch_size: int


@dataclass
class _Job:
    item: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


class Admission:
    """Room for `count` items, held until they are submitted or the admission ends."""

    def __init__(self, batcher: Batcher, count: int) -> None:
        self._batcher = batcher
        self.unsubmitted = count

    def submit(self, items: Sequence[Any]) -> list[asyncio.Future]:
        """Queue items admitted here; each future resolves to a Batched output."""
        if len(items) > self.unsubmitted:
            raise ValueError(f"{len(items)} items submitted on an admission of {self.unsubmitted}")
        self.unsubmitted -= len(items)
        return self._batcher._enqueue(items, len(items))


class Batcher(Generic[In, Out]):
    """Collects items into batches and runs them one at a time on the given executor."""

    def __init__(
        self,
        run_batch: Callable[[list[In]], Sequence[Out]],
        *,
        executor: Executor,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        metrics: Metrics,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._metrics = metrics
        self._pending: collections.deque[_Job] = collections.deque()
        self._reserved = 0  # admitted items not yet submitted
        self._wakeup = asyncio.Event()
        self._executor = executor
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._consume(), name="batcher")
        self._task.add_done_callback(self._on_consumer_done)

    async def stop(self) -> None:
        """Stop taking batches; any item still queued fails rather than hanging."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure was logged when it happened
                await self._task
        _fail(self._pending, ShuttingDownError("the server is shutting down"))
        self._pending.clear()
        self._metrics.queue_depth.set(0)

    @contextlib.asynccontextmanager
    async def admit(self, count: int) -> AsyncIterator[Admission]:
        """Room for `count` items, or QueueFullError at once; room not submitted is given back on exit."""
        if not self.alive:
            raise ShuttingDownError("the batcher is not running")
        queued = len(self._pending) + self._reserved
        if queued + count > self.max_queue:
            raise QueueFullError(f"{queued} images are queued or being decoded; the limit is {self.max_queue}")
        self._reserved += count
        admission = Admission(self, count)
        try:
            yield admission
        finally:
            if admission.unsubmitted:
                self._reserved -= admission.unsubmitted
                self._wakeup.set()

    def _enqueue(self, items: Sequence[Any], admitted: int) -> list[asyncio.Future]:
        self._reserved -= admitted
        if not self.alive:
            raise ShuttingDownError("the batcher stopped")
        loop = asyncio.get_running_loop()
        jobs = [_Job(item, loop.create_future()) for item in items]
        self._pending.extend(jobs)
        self._metrics.queue_depth.set(len(self._pending))
        self._wakeup.set()
        return [job.future for job in jobs]

    async def _next_batch(self) -> list[_Job]:
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = self._pending[0].enqueued + self.max_wait_s
        while len(self._pending) < self.max_batch_size and self._reserved > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)
        batch: list[_Job] = []
        while self._pending and len(batch) < self.max_batch_size:
            job = self._pending.popleft()
            if not job.future.done():  # a cancelled request no longer needs its item
                batch.append(job)
        self._metrics.queue_depth.set(len(self._pending))
        return batch

    async def _consume(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[_Job]) -> None:
        """One call of the batch function; its outcome (outputs or the error) reaches every waiter."""
        started = time.monotonic()
        items = [job.item for job in batch]
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(self._executor, self._run_batch, items)
            if len(outputs) != len(batch):
                raise RuntimeError(f"the batch function returned {len(outputs)} outputs for {len(batch)} items")
        except asyncio.CancelledError:
            _fail(batch, ShuttingDownError("the server is shutting down"))
            raise
        except Exception as exc:
            _fail(batch, exc)
            return
        elapsed = time.monotonic() - started
        for job, output in zip(batch, outputs, strict=True):
            if not job.future.done():
                job.future.set_result(Batched(output, started - job.enqueued, elapsed, len(batch)))
        self._metrics.inference_seconds.observe(elapsed)
        self._metrics.batch_size.observe(len(batch))
        for job in batch:
            self._metrics.queue_wait_seconds.observe(started - job.enqueued)

    def _on_consumer_done(self, task: asyncio.Task) -> None:
        """If the consumer ever dies, nobody may wait on it: fail the queue and refuse new work."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("the batcher stopped: %r; this worker now refuses predictions", error)
            _fail(self._pending, ShuttingDownError(f"the batcher stopped: {error!r}"))
            self._pending.clear()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()


def _fail(jobs: Sequence[_Job] | collections.deque[_Job], exc: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)
