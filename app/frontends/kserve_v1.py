"""KServe V1 (TensorFlow Serving's JSON): GET /v1/models/resnet50 and POST /v1/models/resnet50:predict.

`{"instances": [{"image": {"b64": ...}}, ...]}` (or `{"b64": ...}` directly, and `inputs` for `instances`), with
`heads` and `top_k` in the query string as /v1/predict takes them; the answer is `{"predictions": [...]}`, per image
the top-k of each head. Parsing is /v1/predict's (bounded, every key once, counted before base64 is decoded), and
so is the pipeline. Refusals are `{"error": ...}`, as KServe answers them.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.answers_kserve import KServeModelStatus, KServePredictAnswer
from app.errors import ApiError, Problems
from app.frontends.admission import refuse_early_when_full, serving_pipeline
from app.frontends.client_deadline import requested_timeout_s, unless_client_leaves
from app.frontends.json_response import answer
from app.frontends.rest_v1 import MODEL_NAME
from app.frontends.rest_v1_json import decode_instance, load_document, too_many_images
from app.frontends.rest_v1_params import parse_heads, parse_top_k
from app.frontends.rest_v1_request import query_parameters, read_body
from app.imaging import normalize_content_type
from app.pipeline import ClassifyRequest, ImageInput

PREDICT_SUFFIX = ":predict"
LISTS = ("instances", "inputs")
EXAMPLE = {"instances": [{"image": {"b64": "<base64 image>"}}, {"b64": "<base64 image>"}]}


def _model(request: Request) -> None:
    name = request.path_params["model_name"]
    if name != MODEL_NAME:
        raise ApiError(Problems.MODEL_NOT_FOUND, f"no model {name!r} here; this server serves {MODEL_NAME!r}")


async def model_status(request: Request) -> Response:
    """`{"name", "ready"}`: 200 when the pod is ready to predict, 503 otherwise."""
    if request.path_params["model_name"].endswith(PREDICT_SUFFIX):  # this path's other route takes POST only
        raise HTTPException(405, headers={"Allow": "POST"})
    _model(request)
    ready = request.app.state.worker.pod_status()[0] == "ready"
    return answer(KServeModelStatus(MODEL_NAME, ready), 200 if ready else 503)


def parse_instances(body: bytes, max_images: int) -> list[ImageInput]:
    """The JSON body -> its images, or a 400 naming the instance at fault (runs in a thread)."""
    document = load_document(body, max_images, EXAMPLE)
    unknown = sorted(set(document) - set(LISTS))
    if unknown:
        raise ApiError(
            Problems.UNKNOWN_FIELD, f"unknown JSON field(s): {', '.join(map(repr, unknown))}", accepted=EXAMPLE
        )
    named = [key for key in LISTS if key in document]
    if len(named) != 1:
        raise ApiError(
            Problems.MALFORMED_JSON, "the body takes exactly one of 'instances' or 'inputs'", accepted=EXAMPLE
        )
    key = named[0]
    instances = document[key]
    if not isinstance(instances, list) or not instances:
        raise ApiError(Problems.MALFORMED_JSON, f"{key!r} must be a non-empty list of images", accepted=EXAMPLE)
    if len(instances) > max_images:
        raise too_many_images(len(instances), max_images)
    return [decode_instance(f"{key}[{index}]", _b64(key, index, one)) for index, one in enumerate(instances)]


def _b64(key: str, index: int, instance: object) -> str:
    """`{"image": {"b64": s}}` or `{"b64": s}` -> s."""
    if isinstance(instance, dict) and set(instance) == {"image"}:
        instance = instance["image"]
    if isinstance(instance, dict) and set(instance) == {"b64"} and isinstance(instance["b64"], str):
        return instance["b64"]
    raise ApiError(
        Problems.MALFORMED_JSON,
        f'{key}[{index}] must be {{"image": {{"b64": "<string>"}}}} or {{"b64": "<string>"}}',
        accepted=EXAMPLE,
    )


async def predict(request: Request) -> Response:
    _model(request)
    worker = request.app.state.worker
    pipeline = serving_pipeline(worker)
    settings = worker.settings
    params = query_parameters(request)
    heads, top_k = parse_heads(params.get("heads")), parse_top_k(params.get("top_k"), settings.default_top_k)
    timeout_s = requested_timeout_s(request, settings.request_timeout_s)
    await refuse_early_when_full(request, pipeline)
    body = await read_body(request, settings.max_body_bytes)
    if not body:
        raise ApiError(Problems.EMPTY_BODY, 'the request body is empty; send {"instances": [...]}', accepted=EXAMPLE)
    content_type = normalize_content_type(request.headers.get("content-type", "application/json"))
    if content_type != "application/json":
        raise ApiError(
            Problems.UNSUPPORTED_CONTENT_TYPE,
            f"Content-Type {content_type!r} is not accepted; send JSON",
            accepted=["application/json"],
        )
    images = await run_in_threadpool(parse_instances, body, settings.max_images)
    request.state.images = len(images)  # for the access log
    classify = ClassifyRequest(images, heads, top_k, timeout_s)
    result = await unless_client_leaves(request, pipeline.classify(classify))
    names = sorted(heads)
    return answer(KServePredictAnswer([{name: image.ranked[name] for name in names} for image in result.images]))
