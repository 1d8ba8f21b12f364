"""The running service: model, batcher, thread pools, readiness, and one prediction end to end."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch
from PIL import Image

from app import __version__
from app.batching import Batcher, JobResult, QueueFullError, ShuttingDownError
from app.errors import ApiError
from app.imaging import invalid_image, preprocess
from app.inputs import PredictRequest
from app.metrics import Metrics
from app.models.classifier import Classifier
from app.models.labels import CIFAR10_LABELS
from app.models.weights import NO_HEAD
from app.service_threads import threads_per_worker
from app.settings import Settings

log = logging.getLogger("visionserve")
MODEL_NAME = "resnet50"


@dataclass
class Service:
    """Everything one worker holds while it serves."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    classifier: Classifier | None = None
    batcher: Batcher | None = None
    ready: bool = False
    draining: bool = False
    preprocess_pool: ThreadPoolExecutor | None = None
    inference_thread: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Load weights, warm up, start batching; readiness follows only when all succeeded.

        Every torch call runs on the one inference thread: each thread that calls torch gets an OpenMP
        pool of its own, and two pools on the same cores slow every forward down.
        """
        settings = self.settings
        self.metrics.workers.set(1)
        Image.MAX_IMAGE_PIXELS = settings.max_pixels
        self.inference_thread = ThreadPoolExecutor(1, thread_name_prefix="inference")
        loop = asyncio.get_running_loop()
        self.classifier = await loop.run_in_executor(self.inference_thread, _load_and_warm_up, settings)
        self.preprocess_pool = ThreadPoolExecutor(settings.preprocess_threads, thread_name_prefix="preprocess")
        self.batcher = Batcher(
            self.classifier.predict,
            executor=self.inference_thread,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            metrics=self.metrics,
        )
        self.batcher.start()
        self.metrics.queue_capacity.set(settings.max_queue)
        heads = self.classifier.heads
        self.metrics.model_info.labels(
            settings.model_version,
            heads["imagenet"].weights.kind,
            heads["cifar10"].weights.kind if "cifar10" in heads else "none",
            str(self.classifier.device),
        ).set(1)
        self.ready = True
        self.metrics.ready.set(1)
        log.info(
            "ready: %s threads=%d device=%s",
            self.describe_weights(),
            threads_per_worker(settings),
            self.classifier.device,
        )

    async def stop(self) -> None:
        self.mark_draining()
        if self.batcher is not None:
            await self.batcher.stop()
        for pool in (self.preprocess_pool, self.inference_thread):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def mark_draining(self) -> None:
        """Readiness fails from now on; requests already accepted still complete."""
        self.draining = True
        self.ready = False
        self.metrics.ready.set(0)

    def describe_weights(self) -> str:
        assert self.classifier is not None
        return "; ".join(f"{name}: {head.weights.source}" for name, head in self.classifier.heads.items())

    @property
    def status(self) -> str:
        """loading, ready, draining, or failed (the batcher died: the pod must leave the endpoints)."""
        if self.draining:
            return "draining"
        if self.batcher is not None and not self.batcher.alive:
            return "failed"
        return "ready" if self.ready else "loading"

    async def predict(self, request: PredictRequest) -> dict:
        """Preprocess every image, queue them, await their batches, shape the answer."""
        if self.classifier is None or self.batcher is None:  # still loading; draining workers keep serving
            raise ApiError(503, "not_ready", f"the service is {self.status}", headers=self._retry(), reason="not_ready")
        unavailable = sorted(request.heads - set(self.classifier.heads))
        if unavailable:
            raise ApiError(
                400,
                "head_unavailable",
                f"head(s) {', '.join(unavailable)} are not loaded on this server (cifar_head is 'none')",
                accepted=sorted(self.classifier.heads),
                reason="head_unavailable",
            )
        if len(request.images) > self.settings.max_images:
            raise ApiError(
                413,
                "too_many_images",
                f"{len(request.images)} images in one request; at most {self.settings.max_images}",
                accepted={"max_images": self.settings.max_images},
            )
        started = time.perf_counter()
        try:
            self.batcher.reserve(len(request.images))  # refuse before spending any work on the images
        except ShuttingDownError as exc:
            raise ApiError(503, "not_ready", str(exc), headers=self._retry(), reason="not_ready") from None
        except QueueFullError as exc:
            raise ApiError(
                503,
                "queue_full",
                f"the server is at capacity: {exc}; retry later",
                headers=self._retry(),
                reason="queue_full",
            ) from None
        try:
            tensors, preprocess_s = await self._preprocess_all(request)
        except BaseException:
            self.batcher.release(len(request.images))
            raise
        futures = self.batcher.enqueue(tensors, request.heads, request.top_k)
        try:
            results: list[JobResult] = await asyncio.gather(*futures)
        except QueueFullError as exc:  # the batcher stopped under this request
            raise ApiError(503, "not_ready", str(exc), headers=self._retry(), reason="not_ready") from None
        self.metrics.images.inc(len(results))
        for head in request.heads:
            self.metrics.predictions.labels(head).inc(len(results))
        return self._answer(request, results, preprocess_s, time.perf_counter() - started)

    async def _preprocess_all(self, request: PredictRequest) -> tuple[list[torch.Tensor], list[float]]:
        loop = asyncio.get_running_loop()
        limit = self.settings.max_pixels

        def timed(data: bytes) -> tuple[torch.Tensor, float]:
            start = time.perf_counter()
            tensor = preprocess(data, limit)
            return tensor, time.perf_counter() - start

        outcomes = await asyncio.gather(
            *(loop.run_in_executor(self.preprocess_pool, timed, image.data) for image in request.images),
            return_exceptions=True,
        )
        for image, outcome in zip(request.images, outcomes, strict=True):
            if isinstance(outcome, ApiError):
                if len(request.images) > 1:
                    outcome.message = f"{image.name}: {outcome.message}"
                raise outcome
            if isinstance(outcome, BaseException):
                log.exception("preprocessing %s failed", image.name, exc_info=outcome)
                raise invalid_image(f"{image.name} could not be decoded: {outcome}")
        for _, seconds in outcomes:
            self.metrics.preprocess_seconds.observe(seconds)
        return [tensor for tensor, _ in outcomes], [seconds for _, seconds in outcomes]

    def _retry(self) -> dict[str, str]:
        return {"Retry-After": str(self.settings.retry_after_s)}

    def _answer(
        self, request: PredictRequest, results: list[JobResult], preprocess_s: list[float], total_s: float
    ) -> dict:
        assert self.classifier is not None
        heads = self.classifier.heads
        predictions = []
        for position, (result, prep) in enumerate(zip(results, preprocess_s, strict=True)):
            predictions.append(
                {
                    "image": position,
                    "heads": {
                        name: [
                            {"label": heads[name].labels[index], "index": index, "score": round(score, 6)}
                            for index, score in result.top[name]
                        ]
                        for name in sorted(request.heads)
                    },
                    "batch_size": result.batch_size,
                    "timings_ms": {
                        "preprocess": _ms(prep),
                        "queue": _ms(result.queue_s),
                        "inference": _ms(result.inference_s),
                    },
                }
            )
        return {
            "model": {"name": MODEL_NAME, "version": self.settings.model_version},
            "weights": {name: heads[name].weights.source for name in sorted(request.heads)},
            "predictions": predictions,
            "timings_ms": {"total": _ms(total_s)},
        }

    def describe(self) -> dict:
        """The body of GET /v1/models."""
        assert self.classifier is not None
        s = self.settings
        heads = {
            name: {
                "available": True,
                "classes": len(head.labels),
                "labels": list(head.labels),
                "weights": head.weights.as_dict(),
            }
            for name, head in self.classifier.heads.items()
        }
        if "cifar10" not in heads:
            heads["cifar10"] = {
                "available": False,
                "classes": len(CIFAR10_LABELS),
                "labels": [],
                "weights": NO_HEAD.as_dict(),
            }
        return {
            "model": {
                "name": MODEL_NAME,
                "version": s.model_version,
                "server_version": __version__,
                "device": str(self.classifier.device),
                "torch_threads": threads_per_worker(s),
                "random_weights": any(h.weights.is_random for h in self.classifier.heads.values()),
            },
            "heads": heads,
            "batching": {"max_batch_size": s.max_batch_size, "max_wait_ms": s.max_wait_ms, "max_queue": s.max_queue},
            "limits": {
                "max_body_bytes": s.max_body_bytes,
                "max_pixels": s.max_pixels,
                "max_images": s.max_images,
                "default_top_k": s.default_top_k,
            },
        }


def _load_and_warm_up(settings: Settings) -> Classifier:
    torch.set_num_threads(threads_per_worker(settings))
    classifier = Classifier.from_settings(settings)
    classifier.warm_up(settings.max_batch_size)
    return classifier


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)
