"""Adaptive batching that knows nothing of payloads: a bounded queue, one batch in flight, futures per item.

Room is admitted before the caller spends work on its items (`async with batcher.admit(n)`), so a request
that would overflow is refused at once. The queue is bounded by count and, once the runtime's pace is known,
by time: a request is refused when its images would wait longer than max_queue_ms, and a batch holds no more
images than run in max_batch_ms. A batch waits for more items (up to max_wait after its first) only while
admitted items are still being prepared: an idle server never waits for company that is not coming.
The batch function gets a list of items and returns one output per item; its outcome, answers or error,
reaches every waiter. Items whose deadline passed, or whose caller left, are dropped before they run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar

from app.batch_items import Admission, Batched, DeadlineExceededError, Job, QueueFullError, ShuttingDownError
from app.metrics import Metrics
from app.pace import Pace

log = logging.getLogger("visionserve")

In = TypeVar("In")
Out = TypeVar("Out")


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
        max_queue_ms: float = 0.0,
        max_batch_ms: float = 0.0,
        pace: Pace | None = None,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.max_queue_s = max_queue_ms / 1000.0
        self.max_batch_s = max_batch_ms / 1000.0
        self.pace = pace or Pace()
        self.running_since: float | None = None  # time.monotonic() when the batch in flight started
        self.failed_in_a_row = 0
        self._metrics = metrics
        self._pending: collections.deque[Job] = collections.deque()
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

    @property
    def queued(self) -> int:
        """Items waiting for a batch or admitted and still being prepared."""
        return len(self._pending) + self._reserved

    def drain_s(self) -> float:
        """About how long until the queue has room again: the queued images at the measured pace."""
        return self.pace.seconds_for(self.queued)

    def check_room(self, count: int) -> None:
        """QueueFullError unless `count` more items would be admitted now (by count, then by expected wait)."""
        if not self.alive:
            raise ShuttingDownError("the batcher is not running")
        queued = self.queued
        if queued + count > self.max_queue:
            raise QueueFullError(
                f"{queued} images are queued or being decoded; the limit is {self.max_queue}", self.drain_s()
            )
        wait_s = self.pace.seconds_for(queued + count)
        if queued and self.max_queue_s and wait_s > self.max_queue_s:
            raise QueueFullError(
                f"{queued} images are queued: these would wait about {wait_s * 1000:.0f} ms; "
                f"the limit is {self.max_queue_s * 1000:.0f} ms",
                self.drain_s(),
            )

    @property
    def batch_limit(self) -> int:
        """Images per batch: max_batch_size, fewer when the measured pace would make a batch last over max_batch_ms."""
        return self.pace.items_within(self.max_batch_s, self.max_batch_size)

    @contextlib.asynccontextmanager
    async def admit(self, count: int) -> AsyncIterator[Admission]:
        """Room for `count` items, or QueueFullError at once; room not submitted is given back on exit."""
        self.check_room(count)
        self._reserved += count
        admission = Admission(self._enqueue, count)
        try:
            yield admission
        finally:
            if admission.unsubmitted:
                self._reserved -= admission.unsubmitted
                self._wakeup.set()

    def _enqueue(self, items: Sequence[Any], admitted: int, deadline: float) -> list[asyncio.Future]:
        self._reserved -= admitted
        if not self.alive:
            raise ShuttingDownError("the batcher stopped")
        loop = asyncio.get_running_loop()
        jobs = [Job(item, loop.create_future(), deadline) for item in items]
        self._pending.extend(jobs)
        self._metrics.queue_depth.set(len(self._pending))
        self._wakeup.set()
        return [job.future for job in jobs]

    def withdraw(self, futures: Sequence[asyncio.Future], reason: str) -> int:
        """Take these items out of the queue (their caller left or gave up); returns how many never ran."""
        wanted = {id(future) for future in futures}
        kept: collections.deque[Job] = collections.deque()
        dropped = 0
        for job in self._pending:
            if id(job.future) in wanted:
                dropped += 1
                if not job.future.done():
                    job.future.cancel()
            else:
                kept.append(job)
        self._pending = kept
        self._metrics.queue_depth.set(len(kept))
        if dropped:
            self._metrics.dropped_images.labels(reason, "queue").inc(dropped)
        return dropped

    async def _next_batch(self) -> list[Job]:
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        limit = self.batch_limit
        closes = self._pending[0].enqueued + self.max_wait_s
        while len(self._pending) < limit and self._reserved > 0:
            remaining = closes - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)
        batch: list[Job] = []
        now = time.monotonic()
        expired = 0
        while self._pending and len(batch) < limit:
            job = self._pending.popleft()
            if job.future.done():  # a cancelled request no longer needs its item
                continue
            if job.deadline <= now:
                expired += 1
                job.future.set_exception(DeadlineExceededError("the deadline passed while the image was queued"))
                continue
            batch.append(job)
        if expired:
            self._metrics.dropped_images.labels("deadline", "queue").inc(expired)
        self._metrics.queue_depth.set(len(self._pending))
        return batch

    async def _consume(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[Job]) -> None:
        """One call of the batch function; its outcome (outputs or the error) reaches every waiter."""
        started = time.monotonic()
        self.running_since = started
        items = [job.item for job in batch]
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(self._executor, self._run_batch, items)
            if len(outputs) != len(batch):
                raise RuntimeError(f"the batch function returned {len(outputs)} outputs for {len(batch)} items")
        except asyncio.CancelledError:
            _fail(batch, ShuttingDownError("the server is shutting down"))
            raise
        except Exception as exc:
            self.failed_in_a_row += 1
            _fail(batch, exc)
            return
        finally:
            self.running_since = None
        self.failed_in_a_row = 0
        elapsed = time.monotonic() - started
        self.pace.observe(elapsed, len(batch))
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


def _fail(jobs: Sequence[Job] | collections.deque[Job], exc: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)
