"""The Open Inference Protocol V2 (KServe V2, Triton's HTTP API): health, metadata and infer for model `resnet50`.

Health answers 200 (true) or 400 (false) with an empty body, as the protocol says; liveness and readiness hold the
same truth as /healthz and /readyz (readiness speaks for every worker of the pod). Infer goes through the same
pipeline as /v1/predict: the same admission, early 503, deadlines and batcher. Refusals are `{"error": ...}`.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from app import __version__
from app.answers_kserve import ModelMetadata, ServerMetadata, TensorMetadata
from app.errors import ApiError, Problems
from app.frontends.admission import refuse_early_when_full, serving_pipeline
from app.frontends.client_deadline import requested_timeout_s, unless_client_leaves
from app.frontends.json_response import answer
from app.frontends.oip_v2_wire import HEADER_LENGTH, IMAGE_INPUT, TENSOR_INPUT, encode_infer, parse_infer
from app.frontends.rest_v1 import MODEL_NAME
from app.frontends.rest_v1_request import read_body
from app.lifecycle import UNHEALTHY, Worker

SERVER_NAME = "visionserve"
EXTENSIONS = ["binary_tensor_data", "classification"]


def _worker(request: Request) -> Worker:
    return request.app.state.worker


def _health(true: bool) -> Response:
    return Response(status_code=200 if true else 400)


def model_version(request: Request) -> str:
    """The model's version, once the path names `resnet50` and (if any) its version; 404 otherwise."""
    settings = _worker(request).settings
    name = request.path_params["model_name"]
    if name != MODEL_NAME:
        raise ApiError(Problems.MODEL_NOT_FOUND, f"no model {name!r} here; this server serves {MODEL_NAME!r}")
    version = request.path_params.get("model_version", settings.model_version)
    if version != settings.model_version:
        raise ApiError(
            Problems.MODEL_NOT_FOUND,
            f"{MODEL_NAME} has no version {version!r}; this server serves version {settings.model_version!r}",
        )
    return version


async def server_metadata(request: Request) -> Response:
    return answer(ServerMetadata(SERVER_NAME, __version__, EXTENSIONS))


async def server_live(request: Request) -> Response:
    """Liveness, as /healthz: false once the watchdog finds this worker stalled or failed."""
    return _health(_worker(request).status not in UNHEALTHY)


async def server_ready(request: Request) -> Response:
    """Readiness, as /readyz: true only when every worker of the pod is ready."""
    return _health(_worker(request).pod_status()[0] == "ready")


async def model_ready(request: Request) -> Response:
    model_version(request)
    return _health(_worker(request).pod_status()[0] == "ready")


async def model_metadata(request: Request) -> Response:
    version = model_version(request)
    pipeline = serving_pipeline(_worker(request))
    heads = pipeline.classifier.heads
    return answer(
        ModelMetadata(
            name=MODEL_NAME,
            versions=[version],
            platform=pipeline.classifier.runtime.info.name,
            inputs=[
                TensorMetadata(IMAGE_INPUT, "BYTES", [-1]),
                TensorMetadata(TENSOR_INPUT, "FP32", [-1, 3, 224, 224]),
            ],
            outputs=[TensorMetadata(name, "FP32", [-1, len(head.labels)]) for name, head in heads.items()],
        )
    )


async def infer(request: Request) -> Response:
    version = model_version(request)
    worker = _worker(request)
    pipeline = serving_pipeline(worker)
    settings = worker.settings
    if request.query_params:
        raise ApiError(
            Problems.UNKNOWN_PARAMETER,
            f"unknown query parameter(s): {', '.join(map(repr, sorted(request.query_params)))}; "
            "infer takes its parameters in the JSON object",
            accepted=[],
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise ApiError(
            Problems.UNSUPPORTED_CONTENT_TYPE,
            f"Content-Encoding {encoding!r} is not accepted; send the body uncompressed",
            accepted=["identity"],
        )
    header_timeout_s = requested_timeout_s(request, settings.request_timeout_s)
    await refuse_early_when_full(request, pipeline)
    body = await read_body(request, settings.max_body_bytes)
    heads = {name: len(head.labels) for name, head in pipeline.classifier.heads.items()}
    call = await run_in_threadpool(
        parse_infer, body, request.headers.get(HEADER_LENGTH), heads, settings.max_images
    )  # a big JSON tensor must not stall the loop
    deadlines = [limit for limit in (header_timeout_s, call.timeout_s) if limit is not None]
    classify = replace(call.request, timeout_s=min(deadlines, default=None))
    request.state.images = len(classify.images)  # for the access log
    result = await unless_client_leaves(request, pipeline.classify(classify))
    body, headers = encode_infer(call, result, MODEL_NAME, version)
    return Response(body, headers=headers)
