"""The OpenAPI paths of the KServe family: the Open Inference Protocol V2 (REST) and KServe V1."""

from __future__ import annotations

from app.frontends.oip_v2_wire import HEADER_LENGTH
from app.openapi_parts import (
    PREDICT_ERROR_STATUSES,
    error_response,
    get_operation,
    json_content,
    query_parameters,
    timeout_parameter,
)
from app.settings import Settings

PATH_TEXT = {"type": "string", "minLength": 1}
MODEL_NAME = {"name": "model_name", "in": "path", "required": True, "schema": PATH_TEXT, "example": "resnet50"}
MODEL_VERSION = {"name": "model_version", "in": "path", "required": True, "schema": PATH_TEXT, "example": "1"}
HEALTH = {"200": {"description": "True (empty body)."}, "400": {"description": "False (empty body)."}}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def _with_model(operations: dict, versioned: bool) -> dict:
    """The path's operations, each taking the model's name (and version) from the path."""
    parameters = [MODEL_NAME, MODEL_VERSION] if versioned else [MODEL_NAME]
    for operation in operations.values():
        operation["parameters"] = [*parameters, *operation.get("parameters", [])]
    return operations


def _infer(settings: Settings, refs: dict[str, dict]) -> dict:
    length = {
        "name": HEADER_LENGTH,
        "in": "header",
        "schema": {"type": "integer", "minimum": 1},
        "description": "The length of the JSON object when binary tensor data follows it in the body.",
    }
    binary_answer = {
        "description": "The JSON object, then the outputs asked for as binary data, in order.",
        "headers": {HEADER_LENGTH: {"schema": {"type": "integer"}, "description": "The JSON object's length."}},
        "content": {"application/octet-stream": BINARY},
    }
    success = json_content("Outputs as JSON.", refs["InferResponse"])
    success["content"].update(binary_answer["content"])
    success["headers"] = binary_answer["headers"]
    success["description"] += " " + binary_answer["description"]
    return {
        "post": {
            "summary": "Classify: input `image` (BYTES [N], encoded images) or `input` (FP32 [N, 3, 224, 224], "
            "ImageNet-normalised); outputs `imagenet` and `cifar10` (FP32 probabilities, or with "
            "parameters.classification: k, BYTES [N, k] of 'score:index:label'). parameters.timeout is in "
            "microseconds.",
            "parameters": [length, timeout_parameter(settings)],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": refs["InferRequest"]},
                    "application/octet-stream": {
                        **BINARY,
                        "description": f"The JSON object, then the binary tensors ({HEADER_LENGTH} says where).",
                    },
                },
            },
            "responses": {
                "200": success,
                "404": error_response(404, refs["PlainErrorAnswer"]),
                **{str(status): error_response(status, refs["PlainErrorAnswer"]) for status in PREDICT_ERROR_STATUSES},
            },
        }
    }


def _model_paths(settings: Settings, refs: dict[str, dict], versioned: bool) -> dict[str, dict]:
    base = "/v2/models/{model_name}" + ("/versions/{model_version}" if versioned else "")
    not_found = error_response(404, refs["PlainErrorAnswer"])
    metadata = get_operation(
        "Model metadata: its inputs (exactly one per request), outputs and platform (the runtime).",
        {
            "200": json_content("Metadata.", refs["ModelMetadata"]),
            "404": not_found,
            "503": error_response(503, refs["PlainErrorAnswer"]),
        },
    )
    ready = get_operation("Model ready: as /readyz.", {**HEALTH, "404": not_found})
    return {
        base: _with_model(metadata, versioned),
        f"{base}/ready": _with_model(ready, versioned),
        f"{base}/infer": _with_model(_infer(settings, refs), versioned),
    }


def kserve_paths(settings: Settings, refs: dict[str, dict]) -> dict[str, dict]:
    """Every OIP V2 and KServe V1 path; their refusals are `{"error": "<message>"}` (PlainErrorAnswer)."""
    plain = refs["PlainErrorAnswer"]
    predict = {
        "post": {
            "summary": "KServe V1: classify `instances` (or `inputs`), each {'image': {'b64': ...}} or {'b64': ...}; "
            "per image the top-k of each head.",
            "parameters": [MODEL_NAME, *query_parameters(settings), timeout_parameter(settings)],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": refs["KServePredictRequest"]}},
            },
            "responses": {
                "200": json_content("Top-k labels per image and head.", refs["KServePredictAnswer"]),
                "404": error_response(404, plain),
                **{str(status): error_response(status, plain) for status in PREDICT_ERROR_STATUSES},
            },
        }
    }
    status = refs["KServeModelStatus"]
    return {
        "/v2": get_operation(
            "OIP V2 server metadata: name, version, extensions.",
            {"200": json_content("Metadata.", refs["ServerMetadata"])},
        ),
        "/v2/health/live": get_operation("OIP V2 server live: as /healthz.", dict(HEALTH)),
        "/v2/health/ready": get_operation("OIP V2 server ready: as /readyz, every worker ready.", dict(HEALTH)),
        **_model_paths(settings, refs, versioned=False),
        **_model_paths(settings, refs, versioned=True),
        "/v1/models/{model_name}:predict": predict,
        "/v1/models/{model_name}": _with_model(
            get_operation(
                "KServe V1 model status.",
                {
                    "200": json_content("Ready.", status),
                    "503": json_content("Not ready.", status),
                    "404": error_response(404, plain),
                },
            ),
            versioned=False,
        ),
    }
