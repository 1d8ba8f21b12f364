"""Every answer the service sends, declared once as msgspec types: they encode the JSON and write the OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from app.errors import CODES
from app.settings import HEADS, MAX_TOP_K

ErrorCode = Literal[CODES]  # type: ignore[valid-type]  # the catalogue's codes, as an enum in the schema
HeadName = Literal[HEADS]  # type: ignore[valid-type]
WorkerStatus = Literal["loading", "ready", "draining", "stalled", "failed"]
WeightsKind = Literal["torchvision", "file", "random", "none"]


class ErrorDetail(Struct, omit_defaults=True):
    """What was wrong, and what would have been accepted."""

    code: ErrorCode
    message: str
    accepted: Any = UNSET
    request_id: str | UnsetType = UNSET  # the request's X-Request-ID, which the logs name too


class ErrorAnswer(Struct):
    error: ErrorDetail


class PlainErrorAnswer(Struct, omit_defaults=True):
    """An error as the Open Inference Protocol and KServe V1 answer it: `error` is the message itself.

    `code` and `request_id` are ours, beside it (a client of the protocol reads `error` alone)."""

    error: str
    code: ErrorCode
    request_id: str | UnsetType = UNSET


class Status(Struct, omit_defaults=True):
    status: WorkerStatus | Literal["alive"]
    detail: str | UnsetType = UNSET  # why not ready or not live, in words


class LabelScore(Struct):
    """One class of a head's top-k."""

    label: str
    index: int
    score: float


class ImageTimings(Struct):
    """Milliseconds this image spent in each stage."""

    preprocess: float
    queue: float
    inference: float


class ImagePrediction(Struct):
    image: int  # position in the request
    heads: dict[str, list[LabelScore]]  # top-k per requested head, best first
    batch_size: Annotated[
        int, Meta(ge=0, description="Images in the forward pass that answered it; 0 when the cache answered.")
    ]
    timings_ms: ImageTimings  # all 0 when the cache answered
    cached: Annotated[
        bool, Meta(description="True when the response cache answered: the same image asked the same before.")
    ]


class ModelRef(Struct):
    name: str
    version: str


class TotalTiming(Struct):
    total: float


class PredictAnswer(Struct):
    """The answer of POST /v1/predict."""

    model: ModelRef
    weights: dict[str, str]  # weights source of each requested head
    predictions: list[ImagePrediction]
    timings_ms: TotalTiming


class WeightsDescription(Struct, omit_defaults=True):
    """Where one head's weights came from, in plain words."""

    kind: WeightsKind
    source: str
    sha256: str | None
    accuracy: float | UnsetType = UNSET
    dataset: str | UnsetType = UNSET
    epochs: int | UnsetType = UNSET
    created: str | UnsetType = UNSET
    backbone_weights: str | UnsetType = UNSET
    backbone_sha256: str | UnsetType = UNSET


class HeadDescription(Struct):
    available: bool
    classes: int
    labels: list[str]
    weights: WeightsDescription


class Heads(Struct):
    imagenet: HeadDescription
    cifar10: HeadDescription


class ModelDescription(Struct):
    name: str
    version: str
    server_version: str
    runtime: Literal["openvino", "torch"]
    precision: Literal["fp32", "bf16", "fp16"]  # the precision the runtime actually uses
    device: str
    capabilities: list[str]  # what the runtime found on the hardware, which decided the precision
    threads: int  # inference threads of this worker
    random_weights: bool  # true when any head serves random weights


class Batching(Struct):
    max_batch_size: int
    max_wait_ms: float
    max_queue: int


class Limits(Struct):
    max_body_bytes: int
    max_pixels: int
    max_images: int
    default_top_k: int


class ModelsAnswer(Struct):
    """The answer of GET /v1/models."""

    model: ModelDescription
    heads: Heads
    batching: Batching
    limits: Limits


class Base64Image(Struct, forbid_unknown_fields=True):
    b64: Annotated[
        str, Meta(description="Standard base64, or a data: URL.", extra_json_schema={"contentEncoding": "base64"})
    ]


class JsonPredictRequest(Struct, forbid_unknown_fields=True):
    """The JSON form of POST /v1/predict (documented here; parsed by the front end for precise errors)."""

    instances: Annotated[list[Base64Image], Meta(min_length=1)]
    heads: str | list[HeadName] | UnsetType = UNSET
    top_k: Annotated[int, Meta(ge=1, le=MAX_TOP_K)] | UnsetType = UNSET


_ENCODER = msgspec.json.Encoder()


def encode(answer: Struct) -> bytes:
    """JSON bytes of an answer."""
    return _ENCODER.encode(answer)
