"""Adaptive batching: a bounded queue, one batch in flight, a deadline from the first image."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from app.metrics import Metrics

log = logging.getLogger("visionserve")

# (index, probability) pairs, best first, per requested head.
TopK = dict[str, list[tuple[int, float]]]


class QueueFullError(Exception):
    """The queue cannot take these images now; the client should retry later."""


class ShuttingDownError(QueueFullError):
    """The batcher stopped (shutdown or failure); the client should retry on another worker."""


@dataclass
class Job:
    """One image waiting for a batch, and the future its request awaits."""

    tensor: torch.Tensor
    heads: frozenset[str]
    top_k: int
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class JobResult:
    top: TopK
    queue_s: float
    inference_s: float
    batch_size: int


def run_batch(predict: Callable[[torch.Tensor, set[str]], dict[str, torch.Tensor]], jobs: Sequence[Job]) -> list[TopK]:
    """Stack -> one forward for every head any job asked for -> each job's own top-k."""
    heads = set().union(*(job.heads for job in jobs))
    probabilities = predict(torch.stack([job.tensor for job in jobs]), heads)
    results: list[TopK] = [{} for _ in jobs]
    for head, probs in probabilities.items():
        k = min(max(job.top_k for job in jobs), probs.shape[1])
        scores, indices = torch.topk(probs, k, dim=1)
        for row, job in enumerate(jobs):
            if head in job.heads:
                n = min(job.top_k, k)
                results[row][head] = list(zip(indices[row, :n].tolist(), scores[row, :n].tolist(), strict=True))
    return results


class Batcher:
    """Collects images into batches and runs them one at a time on the inference thread.

    Room in the queue is reserved when a request is admitted, before its images are decoded, so a request
    that would overflow is refused before any work is spent on it. A batch waits for more images (up to
    max_wait after its first) only while reserved images are still being decoded: an idle server never
    waits for company that is not coming.
    """

    def __init__(
        self,
        predict: Callable[[torch.Tensor, set[str]], dict[str, torch.Tensor]],
        *,
        executor: ThreadPoolExecutor,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        metrics: Metrics,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._metrics = metrics
        self._pending: collections.deque[Job] = collections.deque()
        self._reserved = 0  # admitted images still being decoded
        self._wakeup = asyncio.Event()
        self._executor = executor
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._consume(), name="batcher")
        self._task.add_done_callback(self._on_consumer_done)

    async def stop(self) -> None:
        """Stop taking batches; any job still queued fails rather than hanging."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure was logged when it happened
                await self._task
        _fail(self._pending, ShuttingDownError("the server is shutting down"))
        self._pending.clear()
        self._metrics.queue_depth.set(0)

    def reserve(self, count: int) -> None:
        """Admit `count` images, or raise QueueFullError when the queue lacks room for all of them."""
        if not self.alive:
            raise ShuttingDownError("the batcher is not running")
        if len(self._pending) + self._reserved + count > self.max_queue:
            raise QueueFullError(
                f"{len(self._pending) + self._reserved} images are queued or being decoded; "
                f"the limit is {self.max_queue}"
            )
        self._reserved += count

    def release(self, count: int) -> None:
        """Give back a reservation whose images will not come (a decoding error)."""
        self._reserved -= count
        self._wakeup.set()

    def submit(self, tensors: Sequence[torch.Tensor], heads: frozenset[str], top_k: int) -> list[asyncio.Future]:
        """Reserve and enqueue at once (all images of a request, or none)."""
        self.reserve(len(tensors))
        return self.enqueue(tensors, heads, top_k)

    def enqueue(self, tensors: Sequence[torch.Tensor], heads: frozenset[str], top_k: int) -> list[asyncio.Future]:
        """Queue images admitted earlier by reserve()."""
        self._reserved -= len(tensors)
        loop = asyncio.get_running_loop()
        jobs = [Job(tensor, heads, top_k, loop.create_future()) for tensor in tensors]
        self._pending.extend(jobs)
        self._metrics.queue_depth.set(len(self._pending))
        self._wakeup.set()
        return [job.future for job in jobs]

    async def _next_batch(self) -> list[Job]:
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
        batch: list[Job] = []
        while self._pending and len(batch) < self.max_batch_size:
            job = self._pending.popleft()
            if not job.future.done():  # a cancelled request no longer needs its image
                batch.append(job)
        self._metrics.queue_depth.set(len(self._pending))
        return batch

    async def _consume(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch:
                await self._run(batch)

    async def _run(self, batch: list[Job]) -> None:
        """One forward; its outcome (answers or the error) reaches every waiter."""
        started = time.monotonic()
        try:
            tops = await asyncio.get_running_loop().run_in_executor(self._executor, run_batch, self._predict, batch)
        except asyncio.CancelledError:
            _fail(batch, ShuttingDownError("the server is shutting down"))
            raise
        except Exception as exc:
            _fail(batch, exc)
            return
        elapsed = time.monotonic() - started
        for job, top in zip(batch, tops, strict=True):
            if not job.future.done():
                job.future.set_result(JobResult(top, started - job.enqueued, elapsed, len(batch)))
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
