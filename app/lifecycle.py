"""One worker's lifecycle and readiness: load and warm the model, start the pipeline, drain, stop."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image

from app.batching import Batcher
from app.metrics import Metrics
from app.models.classifier import Classifier
from app.pipeline import Pipeline
from app.settings import Settings
from app.threads import threads_per_worker

log = logging.getLogger("visionserve")


class Worker:
    """Everything one worker holds while it serves; readiness is true only between a warm start and draining."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.pipeline: Pipeline | None = None
        self.ready = False
        self.draining = False
        self._pools: list[ThreadPoolExecutor] = []

    async def start(self) -> None:
        """Load weights, warm up, start batching; readiness follows only when all succeeded.

        Every torch call runs on the one inference thread: each thread that calls torch gets an OpenMP
        pool of its own, and two pools on the same cores slow every forward down.
        """
        settings = self.settings
        self.metrics.workers.set(1)
        Image.MAX_IMAGE_PIXELS = settings.max_pixels
        inference_thread = ThreadPoolExecutor(1, thread_name_prefix="inference")
        decode_pool = ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="preprocess")
        self._pools = [decode_pool, inference_thread]
        loop = asyncio.get_running_loop()
        classifier = await loop.run_in_executor(inference_thread, _load_and_warm_up, settings)
        batcher = Batcher(
            classifier.classify,
            executor=inference_thread,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
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
        )
        self._publish(classifier)
        self.ready = True
        self.metrics.ready.set(1)
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
        if self.pipeline is not None:
            await self.pipeline.batcher.stop()
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)

    def mark_draining(self) -> None:
        """Readiness fails from now on; requests already accepted still complete."""
        self.draining = True
        self.ready = False
        self.metrics.ready.set(0)

    @property
    def status(self) -> str:
        """loading, ready, draining, or failed (the batcher died: the pod must leave the endpoints)."""
        if self.draining:
            return "draining"
        if self.pipeline is not None and not self.pipeline.batcher.alive:
            return "failed"
        return "ready" if self.ready else "loading"


def _load_and_warm_up(settings: Settings) -> Classifier:
    torch.set_num_threads(threads_per_worker(settings))
    classifier = Classifier.from_settings(settings)
    classifier.warm_up(settings.max_batch_size)
    return classifier
