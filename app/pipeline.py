"""The inference pipeline, the one entry point every protocol front end calls: admit -> decode -> batch -> rank."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from app.batching import Batched, Batcher, DeadlineExceededError, QueueFullError, ShuttingDownError
from app.errors import ApiError, Problems
from app.imaging import declared_pixels, preprocess
from app.metrics import Metrics
from app.models.cifar_head import NOT_LOADED
from app.models.classifier import Classifier, Ranked, Sample
from app.settings import Settings

log = logging.getLogger("visionserve")
MAX_RETRY_AFTER_S = 60


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
    timeout_s: float | None = None  # the client's deadline; the server's request_timeout_s caps it


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

    def timeout_s(self, request: ClassifyRequest) -> float:
        limit = self.settings.request_timeout_s
        return limit if request.timeout_s is None else min(request.timeout_s, limit)

    def check_room(self) -> None:
        """503 at once when not even one image would be admitted now: the front end need not read the body."""
        try:
            self.batcher.check_room(1)
        except QueueFullError as exc:
            raise self._unavailable(exc) from None

    async def classify(self, request: ClassifyRequest) -> ClassifyResult:
        """Every image of the request, ranked by every head it asks for; ApiError on refusal or a passed deadline.

        A caller that is cancelled (its client left) takes its images out of the queue on the way out.
        """
        self._check(request)
        started = time.perf_counter()
        timeout_s = self.timeout_s(request)
        deadline = time.monotonic() + timeout_s
        stage, futures = "decode", []
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + timeout_s):
                async with self.batcher.admit(len(request.images)) as admission:  # refused before any decoding
                    samples, decode_s = await self._decode_all(request)
                    stage, futures = "queue", admission.submit(samples, deadline)
                batched: list[Batched[Ranked]] = await asyncio.gather(*futures)
        except QueueFullError as exc:
            raise self._unavailable(exc) from None
        except (TimeoutError, DeadlineExceededError):
            self._drop(request, stage, futures, "deadline")
            raise self._deadline_exceeded(timeout_s, stage) from None
        except asyncio.CancelledError:
            self._drop(request, stage, futures, "disconnect")
            raise
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
                f"head(s) {', '.join(unavailable)} are {NOT_LOADED}",
                accepted=sorted(self.classifier.heads),
            )
        if len(request.images) > self.settings.max_images:
            raise ApiError(
                Problems.TOO_MANY_IMAGES,
                f"{len(request.images)} images in one request; at most {self.settings.max_images}",
                accepted={"max_images": self.settings.max_images},
            )
        budget = self.settings.max_request_pixels
        pixels = sum(declared_pixels(image.data) for image in request.images)  # headers only, nothing decoded
        if pixels > budget:
            raise ApiError(
                Problems.PIXEL_BUDGET_EXCEEDED,
                f"the images declare {pixels} pixels in all; one request may hold at most {budget}",
                accepted={"max_request_pixels": budget, "max_pixels": self.settings.max_pixels},
            )

    def _drop(self, request: ClassifyRequest, stage: str, futures: list[asyncio.Future], reason: str) -> None:
        """Count the images that will never run; queued ones leave the queue."""
        if stage == "queue":
            self.batcher.withdraw(futures, reason)
        else:
            self._metrics.dropped_images.labels(reason, "decode").inc(len(request.images))

    def _deadline_exceeded(self, timeout_s: float, stage: str) -> ApiError:
        where = "while its images were decoded" if stage == "decode" else "before its batch finished"
        return ApiError(
            Problems.DEADLINE_EXCEEDED,
            f"the request's deadline of {timeout_s * 1000:.0f} ms passed {where}; its images were dropped",
            accepted={"X-Request-Timeout-Ms": f"1 to {self.settings.request_timeout_s * 1000:.0f}"},
        )

    def _unavailable(self, exc: QueueFullError) -> ApiError:
        if not isinstance(exc, ShuttingDownError):
            retry = self.retry_headers(exc.drain_s)
            message = f"the server is at capacity: {exc}; retry later"
            return ApiError(Problems.QUEUE_FULL, message, headers=retry, pause_s=self.retry_pause_s(exc.drain_s, retry))
        retry = self.retry_headers()
        if self._draining():
            return ApiError(Problems.DRAINING, f"this worker is shutting down ({exc}); retry", headers=retry)
        return ApiError(Problems.NOT_READY, str(exc), headers=retry)

    def retry_headers(self, drain_s: float = 0.0) -> dict[str, str]:
        """Retry-After: about when the queue has room, spread (x1 to x2) so rejected clients do not return together."""
        least = self.settings.retry_after_s
        seconds = max(least, min(MAX_RETRY_AFTER_S, math.ceil(drain_s * random.uniform(1.0, 2.0))))
        if seconds == least and random.random() < 0.5:
            seconds += 1  # a short queue still spreads its returns over two seconds
        return {"Retry-After": str(seconds)}

    def retry_pause_s(self, drain_s: float, retry: dict[str, str]) -> float:
        """How long the refused connection is not read again: about until the queue has room (x1 to x1.5, spread),
        at least a batch's time, never past Retry-After nor retry_pause_max_s. A client that honours Retry-After
        never notices; one that retries at once waits for room instead of costing a refusal each round trip."""
        ceiling = min(self.settings.retry_pause_max_s, float(retry["Retry-After"]))
        if ceiling <= 0:
            return 0.0
        least = self.settings.max_batch_ms / 1000.0
        return min(ceiling, max(least, drain_s) * random.uniform(1.0, 1.5))

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
            if isinstance(outcome, BaseException):  # not the image's fault (imaging names those): a 500
                raise outcome
        for _, seconds in outcomes:
            self._metrics.preprocess_seconds.observe(seconds)
        return [sample for sample, _ in outcomes], [seconds for _, seconds in outcomes]
