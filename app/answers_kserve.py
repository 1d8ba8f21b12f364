"""The KServe family's wire types as msgspec structs: the Open Inference Protocol V2 (REST) and KServe V1.

The V2 request types parse the infer request's JSON (strictly: unknown fields are refused) and, like every answer
type here, write the OpenAPI schemas. Tensor `data` stays raw JSON until the input's datatype and shape are checked.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from app.answers import Base64Image, LabelScore

Parameter = str | int | float | bool
Parameters = dict[str, Parameter]
Dimension = Annotated[int, Meta(ge=0)]


class ServerMetadata(Struct):
    """GET /v2."""

    name: str
    version: str
    extensions: list[str]


class TensorMetadata(Struct):
    name: str
    datatype: Literal["BYTES", "FP32"]
    shape: list[int]  # -1: any size


class ModelMetadata(Struct):
    """GET /v2/models/{model_name}[/versions/{model_version}]."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]  # exactly one of them per request
    outputs: list[TensorMetadata]


class RequestInput(Struct, forbid_unknown_fields=True):
    name: str
    shape: list[Dimension]
    datatype: str
    parameters: Parameters = {}
    data: Annotated[
        Raw,
        Meta(
            description="The tensor in JSON, row-major, flat or nested: for BYTES each element is a base64 string "
            "(one encoded image). Absent when parameters.binary_data_size places it after the JSON."
        ),
    ] = msgspec.field(default_factory=Raw)


class RequestOutput(Struct, forbid_unknown_fields=True):
    name: str
    parameters: Parameters = {}


class InferRequest(Struct, forbid_unknown_fields=True):
    """POST /v2/models/{model_name}[/versions/{model_version}]/infer: the JSON object (binary tensors follow it)."""

    inputs: Annotated[list[RequestInput], Meta(min_length=1)]
    id: str | UnsetType = UNSET
    parameters: Parameters = {}
    outputs: list[RequestOutput] | UnsetType = UNSET


class ResponseOutput(Struct, omit_defaults=True, kw_only=True):
    name: str
    datatype: Literal["BYTES", "FP32"]
    shape: list[int]
    parameters: dict[str, int] | UnsetType = UNSET  # binary_data_size, when the data follows the JSON
    data: list[float | str] | UnsetType = UNSET  # row-major, flat; absent when sent as binary


class InferResponse(Struct, omit_defaults=True, kw_only=True):
    """The JSON object of an infer answer (binary outputs follow it, sized by Inference-Header-Content-Length)."""

    model_name: str
    model_version: str
    id: str | UnsetType = UNSET
    outputs: list[ResponseOutput]


class KServeModelStatus(Struct):
    """GET /v1/models/{model_name} (KServe V1)."""

    name: str
    ready: bool


class KServeInstance(Struct, forbid_unknown_fields=True):
    """One image: `{"image": {"b64": ...}}` or `{"b64": ...}` (exactly one of the two)."""

    image: Base64Image | UnsetType = UNSET
    b64: Annotated[str, Meta(extra_json_schema={"contentEncoding": "base64"})] | UnsetType = UNSET


class KServePredictRequest(Struct, forbid_unknown_fields=True):
    """POST /v1/models/{model_name}:predict (documented here; parsed by the front end for precise errors):
    `instances`, or its synonym `inputs`, exactly one of the two."""

    instances: Annotated[list[KServeInstance], Meta(min_length=1)] | UnsetType = UNSET
    inputs: Annotated[list[KServeInstance], Meta(min_length=1)] | UnsetType = UNSET


class KServePredictAnswer(Struct):
    """The answer of POST /v1/models/{model_name}:predict: per image, in order, the top-k of each head asked for."""

    predictions: list[dict[str, list[LabelScore]]]
