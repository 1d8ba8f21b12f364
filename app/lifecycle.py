"""One worker's lifecycle and readiness: load and warm the model, start the pipeline, drain, stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image

from app import worker_states
from app.batching import Batcher
from app.metrics import Metrics
from app.models.classifier import Classifier
from app.pace import Pace
from app.pipeline import Pipeline
from app.response_cache import ResponseCache
from app.settings import Settings
from app.threads import decode_threads, threads_per_worker

log = logging.getLogger("visionserve")
WATCH_INTERVAL_S = 1.0
UNHEALTHY = frozenset({"stalled", "failed"})


class Worker:
    """Everything one worker holds while it serves; readiness is true only between a warm start and draining."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.pipeline: Pipeline | None = None
        self.ready = False
        self.draining = False
        self._pools: list[ThreadPoolExecutor] = []
        self._watchdog: asyncio.Task | None = None
        self._shown = ""  # the status last published
        self.start_failure: str | None = None  # why start() failed, in one line with the fix (app/startup.py)

    async def start(self) -> None:
        """Load weights, warm up, start batching; readiness follows only when all succeeded.

        Every torch call runs on the one inference thread: each thread that calls torch gets an OpenMP
        pool of its own, and two pools on the same cores slow every forward down.
        """
        settings = self.settings
        self.metrics.workers.set(1)
        worker_states.publish("loading")
        Image.MAX_IMAGE_PIXELS = settings.max_pixels
        inference_thread = ThreadPoolExecutor(1, thread_name_prefix="inference")
        decode_pool = ThreadPoolExecutor(decode_threads(settings), thread_name_prefix="preprocess")
        self._pools = [decode_pool, inference_thread]
        loop = asyncio.get_running_loop()
        classifier, pace = await loop.run_in_executor(inference_thread, _load_and_warm_up, settings)
        batcher = Batcher(
            classifier.classify,
            executor=inference_thread,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            max_queue_ms=settings.max_queue_ms,
            max_batch_ms=settings.max_batch_ms,
            pace=pace,
            metrics=self.metrics,
        )
        batcher.start()
        self.pipeline = Pipeline(
            settings,
            classifier=classifier,
            batcher=batcher,
            decode_pool=decode_pool,
            metrics=self.metrics,
            draining=lambda: self.draining,
            cache=ResponseCache.for_model(settings, classifier, self.metrics),
        )
        self._publish(classifier)
        self.ready = True
        self._watchdog = loop.create_task(self._watch(), name="watchdog")
        info = classifier.runtime.info
        log.info(
            "ready: %s; runtime %s %s on %s with %d threads (found: %s)",
            "; ".join(f"{name}: {head.weights.source}" for name, head in classifier.heads.items()),
            info.name,
            info.precision,
            info.device,
            info.threads,
            ", ".join(info.capabilities) or "nothing special",
        )
        if settings.cache_max_entries:
            log.info(
                "response cache: up to %d answers and %.0f MiB in this worker",
                settings.cache_max_entries,
                settings.cache_max_bytes / 2**20,
            )

    def _publish(self, classifier: Classifier) -> None:
        heads = classifier.heads
        info = classifier.runtime.info
        self.metrics.queue_capacity.set(self.settings.max_queue)
        self.metrics.model_info.labels(
            self.settings.model_version,
            heads["imagenet"].weights.kind,
            heads["cifar10"].weights.kind if "cifar10" in heads else "none",
            info.device,
            info.name,
            info.precision,
        ).set(1)

    async def stop(self) -> None:
        self.mark_draining()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.pipeline is not None:
            await self.pipeline.batcher.stop()
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)

    def mark_draining(self) -> None:
        """Readiness fails from now on; requests already accepted still complete."""
        self.draining = True
        self.ready = False
        self._show("draining")

    async def _watch(self) -> None:
        """Every second: publish this worker's status (readiness gauge, the shared directory), log changes."""
        while True:
            self._show(self.status)
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _show(self, status: str) -> None:
        if status != self._shown:
            if status in UNHEALTHY:
                log.error("worker %s: %s; it reports not ready and not live", status, self.problem())
            self._shown = status
            self.metrics.ready.set(1 if status == "ready" else 0)
            worker_states.publish(status)

    @property
    def status(self) -> str:
        """loading, ready, draining, stalled (a forward pass over the watchdog limit) or failed (the batcher died,
        or batches keep failing): the last two fail liveness too, so Kubernetes restarts the worker."""
        return self._health()[0]

    def problem(self) -> str:
        """In words, why this worker is stalled or failed (empty when it is neither)."""
        return self._health()[1]

    def _health(self) -> tuple[str, str]:
        if self.draining:
            return "draining", ""
        if self.pipeline is not None:
            batcher, limits = self.pipeline.batcher, self.settings
            if not batcher.alive:
                return "failed", "the batcher stopped"
            if batcher.failed_in_a_row >= limits.watchdog_failed_batches:
                return "failed", f"{batcher.failed_in_a_row} batches in a row failed"
            started = batcher.running_since
            running = 0.0 if started is None else time.monotonic() - started
            if running > limits.watchdog_forward_s:
                return "stalled", f"a forward pass has run {running:.0f} s (limit {limits.watchdog_forward_s:g} s)"
        return ("ready" if self.ready else "loading"), ""

    def pod_status(self) -> tuple[str, str]:
        """(status, detail) for /readyz: ready only when this worker and every sibling are."""
        status = self.status
        self._show(status)  # siblings learn of a change now, not at the next watchdog tick
        if status != "ready":
            return status, self.problem()
        others = worker_states.others_not_ready(self.settings.workers)
        return ("loading", others) if others else ("ready", "")


def _load_and_warm_up(settings: Settings) -> tuple[Classifier, Pace]:
    """The classifier, warm, and its first measured pace (a timed forward at the largest batch)."""
    torch.set_num_threads(threads_per_worker(settings))
    classifier = Classifier.from_settings(settings)
    classifier.warm_up(settings.max_batch_size)
    pace = Pace()
    started = time.monotonic()
    classifier.warm_up(settings.max_batch_size, smallest=False)
    pace.observe(time.monotonic() - started, settings.max_batch_size)
    return classifier, pace
