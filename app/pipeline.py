"""The inference pipeline, the one entry point every protocol front end calls: admit -> decode -> batch -> rank."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import numpy as np

from app.batching import Batched, Batcher, DeadlineExceededError, QueueFullError, ShuttingDownError
from app.errors import ApiError, Problems
from app.imaging import INPUT_SIZE, declared_pixels, preprocess
from app.metrics import Metrics
from app.models.cifar_head import NOT_LOADED
from app.models.classifier import Classified, Classifier, Ranked, Sample
from app.models.network import pixels_from_normalised
from app.response_cache import ResponseCache
from app.settings import Settings

log = logging.getLogger("visionserve")
MAX_RETRY_AFTER_S = 60


@dataclass(frozen=True)
class ImageInput:
    """One image as the client sent it."""

    name: str  # how error messages refer to it
    data: bytes


@dataclass(frozen=True)
class TensorInput:
    """One image the client already preprocessed: 3 x 224 x 224 float32, ImageNet-normalised (OIP V2's `input`)."""

    name: str
    tensor: np.ndarray


@dataclass(frozen=True)
class ClassifyRequest:
    """What every front end parses its wire format into."""

    images: list[ImageInput] | list[TensorInput]
    heads: frozenset[str]
    top_k: int
    timeout_s: float | None = None  # the client's deadline; the server's request_timeout_s caps it
    scores: bool = False  # every class's probability per head too, not only the top-k


@dataclass(frozen=True)
class ImageResult:
    ranked: Ranked
    preprocess_s: float
    queue_s: float
    inference_s: float
    batch_size: int  # 0 when the answer came from the response cache
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # head -> probabilities, when the request asked
    cached: bool = False


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
        batcher: Batcher[Sample, Classified],
        decode_pool: Executor,
        metrics: Metrics,
        draining: Callable[[], bool],
        cache: ResponseCache[Classified] | None = None,
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.batcher = batcher
        self._decode_pool = decode_pool
        self._metrics = metrics
        self._draining = draining
        self.cache: ResponseCache[Classified] = cache if cache is not None else ResponseCache(0, 0)

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

        Images the response cache answers skip decode and inference; a request it answers whole is not admitted
        to the queue at all.
        """
        self._check(request)
        started = time.perf_counter()
        lookup = self.cache.lookup(request)
        missing = [request.images[position] for position in lookup.missing]
        ran = await self._run(replace(request, images=missing), len(request.images) > 1) if missing else []
        self.cache.store(lookup, [Classified(image.ranked, image.scores) for image in ran])
        fresh = iter(ran)
        images = [
            next(fresh) if hit is None else ImageResult(hit.ranked, 0.0, 0.0, 0.0, 0, hit.scores, cached=True)
            for hit in lookup.found
        ]
        self._metrics.images.inc(len(images))
        for head in request.heads:
            self._metrics.predictions.labels(head).inc(len(images))
        return ClassifyResult(images, time.perf_counter() - started)

    async def _run(self, request: ClassifyRequest, named: bool) -> list[ImageResult]:
        """Admit, decode, batch and rank the request's images; `named`: errors name the image that caused them.

        A caller that is cancelled (its client left) takes its images out of the queue on the way out.
        """
        timeout_s = self.timeout_s(request)
        deadline = time.monotonic() + timeout_s
        stage, futures = "decode", []
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + timeout_s):
                async with self.batcher.admit(len(request.images)) as admission:  # refused before any decoding
                    samples, decode_s = await self._decode_all(request, named)
                    stage, futures = "queue", admission.submit(samples, deadline)
                batched: list[Batched[Classified]] = await asyncio.gather(*futures)
        except QueueFullError as exc:
            raise self._unavailable(exc) from None
        except (TimeoutError, DeadlineExceededError):
            self._drop(request, stage, futures, "deadline")
            raise self._deadline_exceeded(timeout_s, stage) from None
        except asyncio.CancelledError:
            self._drop(request, stage, futures, "disconnect")
            raise
        return [
            ImageResult(one.value.ranked, seconds, one.queue_s, one.inference_s, one.batch_size, one.value.scores)
            for one, seconds in zip(batched, decode_s, strict=True)
        ]

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
        pixels = sum(_declared_pixels(image) for image in request.images)  # headers only, nothing decoded
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
        """How long the refused connection is not read again (app/connections.py): about until the queue has room
        (x1 to x1.5, spread), at least a batch's time, never past Retry-After nor retry_pause_max_s (0: no pause)."""
        ceiling = min(self.settings.retry_pause_max_s, float(retry["Retry-After"]))
        least = self.settings.max_batch_ms / 1000.0
        return min(ceiling, max(least, drain_s) * random.uniform(1.0, 1.5)) if ceiling > 0 else 0.0

    async def _decode_all(self, request: ClassifyRequest, named: bool) -> tuple[list[Sample], list[float]]:
        loop = asyncio.get_running_loop()
        limit = self.settings.max_pixels

        def timed(image: ImageInput | TensorInput) -> tuple[Sample, float]:
            start = time.perf_counter()
            if isinstance(image, TensorInput):
                pixels = pixels_from_normalised(image.tensor)
            else:
                pixels = preprocess(image.data, limit)
            sample = Sample(pixels, request.heads, request.top_k, request.scores)
            return sample, time.perf_counter() - start

        outcomes = await asyncio.gather(
            *(loop.run_in_executor(self._decode_pool, timed, image) for image in request.images),
            return_exceptions=True,
        )
        for image, outcome in zip(request.images, outcomes, strict=True):
            if isinstance(outcome, ApiError):
                if named:
                    outcome.message = f"{image.name}: {outcome.message}"
                raise outcome
            if isinstance(outcome, BaseException):  # not the image's fault (imaging names those): a 500
                raise outcome
        for _, seconds in outcomes:
            self._metrics.preprocess_seconds.observe(seconds)
        return [sample for sample, _ in outcomes], [seconds for _, seconds in outcomes]


def _declared_pixels(image: ImageInput | TensorInput) -> int:
    """What an input's header declares (an encoded image), or its fixed size (a preprocessed tensor)."""
    return INPUT_SIZE * INPUT_SIZE if isinstance(image, TensorInput) else declared_pixels(image.data)
