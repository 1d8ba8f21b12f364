"""The visionserve REST API v1: POST /v1/predict and GET /v1/models."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from app import __version__
from app.answers import (
    Batching,
    HeadDescription,
    Heads,
    ImagePrediction,
    ImageTimings,
    Limits,
    ModelDescription,
    ModelRef,
    ModelsAnswer,
    PredictAnswer,
    Status,
    TotalTiming,
    WeightsDescription,
)
from app.frontends.admission import refuse_early_when_full, serving_pipeline
from app.frontends.client_deadline import requested_timeout_s, unless_client_leaves
from app.frontends.json_response import answer
from app.frontends.rest_v1_request import parse_predict, read_body
from app.lifecycle import Worker
from app.models.labels import CIFAR10_LABELS
from app.models.network import HeadInfo
from app.models.weights import NO_HEAD, WeightsInfo
from app.pipeline import ClassifyRequest, ClassifyResult, Pipeline
from app.settings import Settings

MODEL_NAME = "resnet50"


def _worker(request: Request) -> Worker:
    return request.app.state.worker


async def predict(request: Request) -> Response:
    worker = _worker(request)
    pipeline = serving_pipeline(worker)
    settings = worker.settings
    timeout_s = requested_timeout_s(request, settings.request_timeout_s)
    await refuse_early_when_full(request, pipeline)
    body = await read_body(request, settings.max_body_bytes)
    parsed = await parse_predict(request, body, settings.default_top_k, settings.max_images)
    parsed = replace(parsed, timeout_s=timeout_s)
    request.state.images = len(parsed.images)  # for the access log
    result = await unless_client_leaves(request, pipeline.classify(parsed))
    return answer(predict_answer(parsed, result, pipeline))


async def models(request: Request) -> Response:
    worker = _worker(request)
    if worker.pipeline is None:
        return answer(Status(worker.status), 503)  # type: ignore[arg-type]
    return answer(models_answer(worker.settings, worker.pipeline))


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def predict_answer(request: ClassifyRequest, result: ClassifyResult, pipeline: Pipeline) -> PredictAnswer:
    heads = pipeline.classifier.heads
    names = sorted(request.heads)
    predictions = [
        ImagePrediction(
            image=position,
            heads={name: image.ranked[name] for name in names},
            batch_size=image.batch_size,
            timings_ms=ImageTimings(_ms(image.preprocess_s), _ms(image.queue_s), _ms(image.inference_s)),
            cached=image.cached,
        )
        for position, image in enumerate(result.images)
    ]
    return PredictAnswer(
        model=ModelRef(MODEL_NAME, pipeline.settings.model_version),
        weights={name: heads[name].weights.source for name in names},
        predictions=predictions,
        timings_ms=TotalTiming(_ms(result.total_s)),
    )


def _weights(info: WeightsInfo) -> WeightsDescription:
    return WeightsDescription(info.kind, info.source, info.sha256, **info.metadata)  # type: ignore[arg-type]


def _head(head: HeadInfo) -> HeadDescription:
    return HeadDescription(True, len(head.labels), list(head.labels), _weights(head.weights))


def models_answer(settings: Settings, pipeline: Pipeline) -> ModelsAnswer:
    """The body of GET /v1/models."""
    classifier = pipeline.classifier
    heads = classifier.heads
    info = classifier.runtime.info
    cifar = (
        _head(heads["cifar10"])
        if "cifar10" in heads
        else HeadDescription(False, len(CIFAR10_LABELS), [], _weights(NO_HEAD))
    )
    s = settings
    return ModelsAnswer(
        model=ModelDescription(
            name=MODEL_NAME,
            version=s.model_version,
            server_version=__version__,
            runtime=info.name,  # type: ignore[arg-type]
            precision=info.precision,  # type: ignore[arg-type]
            device=info.device,
            capabilities=list(info.capabilities),
            threads=info.threads,
            random_weights=any(head.weights.is_random for head in heads.values()),
        ),
        heads=Heads(imagenet=_head(heads["imagenet"]), cifar10=cifar),
        batching=Batching(s.max_batch_size, s.max_wait_ms, s.max_queue),
        limits=Limits(s.max_body_bytes, s.max_pixels, s.max_images, s.default_top_k),
    )
