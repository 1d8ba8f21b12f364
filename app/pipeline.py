"""The inference pipeline, the one entry point every protocol front end calls: admit -> decode -> batch -> rank."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from app.batching import Batched, Batcher, QueueFullError, ShuttingDownError
from app.errors import ApiError, Problems
from app.imaging import invalid_image, preprocess
from app.metrics import Metrics
from app.models.classifier import Classifier, Ranked, Sample
from app.settings import Settings

log = logging.getLogger("visionserve")


@dataclass(frozen=True)
class ImageInput:
    """One image as the client sent it."""

    name: str  # how error messages refer to it
    data: bytes


@dataclass(frozen=True)
class ClassifyRequest:
    """What every front end parses its wire format into."""

    images: list[ImageInput]
    heads: frozenset[str]
    top_k: int


@dataclass(frozen=True)
class ImageResult:
    ranked: Ranked
    preprocess_s: float
    queue_s: float
    inference_s: float
    batch_size: int


@dataclass(frozen=True)
class ClassifyResult:
    images: list[ImageResult]
    total_s: float


class Pipeline:
    """Admission by count, decode on a thread pool, the batcher, the model's postprocess."""

    def __init__(
        self,
        settings: Settings,
        *,
        classifier: Classifier,
        batcher: Batcher[Sample, Ranked],
        decode_pool: Executor,
        metrics: Metrics,
        draining: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.batcher = batcher
        self._decode_pool = decode_pool
        self._metrics = metrics
        self._draining = draining

    async def classify(self, request: ClassifyRequest) -> ClassifyResult:
        """Every image of the request, ranked by every head it asks for; ApiError on refusal."""
        self._check(request)
        started = time.perf_counter()
        try:
            async with self.batcher.admit(len(request.images)) as admission:  # refused before any decoding
                samples, decode_s = await self._decode_all(request)
                futures = admission.submit(samples)
            batched: list[Batched[Ranked]] = await asyncio.gather(*futures)
        except QueueFullError as exc:
            raise self._unavailable(exc) from None
        self._metrics.images.inc(len(batched))
        for head in request.heads:
            self._metrics.predictions.labels(head).inc(len(batched))
        images = [
            ImageResult(one.value, seconds, one.queue_s, one.inference_s, one.batch_size)
            for one, seconds in zip(batched, decode_s, strict=True)
        ]
        return ClassifyResult(images, time.perf_counter() - started)

    def _check(self, request: ClassifyRequest) -> None:
        unavailable = sorted(request.heads - set(self.classifier.heads))
        if unavailable:
            raise ApiError(
                Problems.HEAD_UNAVAILABLE,
                f"head(s) {', '.join(unavailable)} are not loaded on this server (cifar_head is 'none')",
                accepted=sorted(self.classifier.heads),
            )
        if len(request.images) > self.settings.max_images:
            raise ApiError(
                Problems.TOO_MANY_IMAGES,
                f"{len(request.images)} images in one request; at most {self.settings.max_images}",
                accepted={"max_images": self.settings.max_images},
            )

    def _unavailable(self, exc: QueueFullError) -> ApiError:
        retry = self.retry_headers()
        if not isinstance(exc, ShuttingDownError):
            return ApiError(Problems.QUEUE_FULL, f"the server is at capacity: {exc}; retry later", headers=retry)
        if self._draining():
            return ApiError(Problems.DRAINING, f"this worker is shutting down ({exc}); retry", headers=retry)
        return ApiError(Problems.NOT_READY, str(exc), headers=retry)

    def retry_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.settings.retry_after_s)}

    async def _decode_all(self, request: ClassifyRequest) -> tuple[list[Sample], list[float]]:
        loop = asyncio.get_running_loop()
        limit = self.settings.max_pixels

        def timed(data: bytes) -> tuple[Sample, float]:
            start = time.perf_counter()
            sample = Sample(preprocess(data, limit), request.heads, request.top_k)
            return sample, time.perf_counter() - start

        outcomes = await asyncio.gather(
            *(loop.run_in_executor(self._decode_pool, timed, image.data) for image in request.images),
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
            self._metrics.preprocess_seconds.observe(seconds)
        return [sample for sample, _ in outcomes], [seconds for _, seconds in outcomes]
