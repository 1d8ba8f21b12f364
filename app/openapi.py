"""The OpenAPI 3.1 document: schemas from the answer types, error responses from the error catalogue."""

from __future__ import annotations

from typing import Any

import msgspec

from app import __version__
from app.answers import ErrorAnswer, JsonPredictRequest, ModelsAnswer, PlainErrorAnswer, PredictAnswer, Status
from app.answers_kserve import (
    InferRequest,
    InferResponse,
    KServeModelStatus,
    KServePredictAnswer,
    KServePredictRequest,
    ModelMetadata,
    ServerMetadata,
)
from app.frontends import page
from app.frontends.auth import EXEMPT_PATHS
from app.frontends.errors import speaks_plain_errors
from app.frontends.ports import METRICS_PATH
from app.frontends.request_ids import HEADER as REQUEST_ID
from app.frontends.request_ids import SANE_ID
from app.frontends.rest_v1_request import SNIFFED_TYPES
from app.imaging import ACCEPTED_CONTENT_TYPES
from app.openapi_kserve import kserve_paths
from app.openapi_parts import (
    PREDICT_ERROR_STATUSES,
    error_response,
    get_operation,
    json_content,
    query_parameters,
    timeout_parameter,
)
from app.settings import Settings

REF = "#/components/schemas/{name}"
ANSWER_TYPES = (
    PredictAnswer,
    ModelsAnswer,
    Status,
    ErrorAnswer,
    JsonPredictRequest,
    PlainErrorAnswer,
    ServerMetadata,
    ModelMetadata,
    InferRequest,
    InferResponse,
    KServeModelStatus,
    KServePredictRequest,
    KServePredictAnswer,
)
REQUEST_ID_ANSWERED = {
    "schema": {"type": "string"},
    "description": "The request's id: yours when it was sane, else a new one; the access log and errors name it.",
}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key as a Bearer token."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key."},
}


def _schemas() -> tuple[dict[str, dict], dict[str, Any]]:
    """({type name: $ref schema}, components) for every answer type."""
    refs, components = msgspec.json.schema_components(ANSWER_TYPES, ref_template=REF)
    return {kind.__name__: ref for kind, ref in zip(ANSWER_TYPES, refs, strict=True)}, components


def _predict(settings: Settings, refs: dict[str, dict]) -> dict:
    binary = {"schema": {"type": "string", "format": "binary"}}
    multipart = {
        "type": "object",
        "description": "Every file part is an image, whatever its name; optional text fields heads and top_k.",
        "additionalProperties": {"type": "string", "format": "binary"},
    }
    return {
        "summary": "Classify one or more images with the ImageNet-1k and/or CIFAR-10 head.",
        "parameters": [*query_parameters(settings), timeout_parameter(settings)],
        "requestBody": {
            "required": True,
            "description": "An image as the raw body, multipart or JSON. A raw body is known by its bytes: "
            f"Content-Type {', '.join(t for t in SNIFFED_TYPES if t)} or none at all is read as an image when it "
            "is one (refused like any image when it is not an accepted one).",
            "content": {
                **{content_type: binary for content_type in [*ACCEPTED_CONTENT_TYPES, "application/octet-stream"]},
                "multipart/form-data": {"schema": multipart},
                "application/json": {"schema": refs["JsonPredictRequest"]},
            },
        },
        "responses": {
            "200": json_content("Top-k labels per image and head.", refs["PredictAnswer"]),
            **{str(status): error_response(status, refs["ErrorAnswer"]) for status in PREDICT_ERROR_STATUSES},
        },
    }


def _with_request_ids(paths: dict) -> dict:
    """Every answer carries X-Request-ID (app/frontends/request_ids.py); the request header is described in `info`:
    as a parameter of every operation, schemathesis's negative phase takes any extra header for a schema violation."""
    for item in paths.values():
        for operation in item.values():
            for response in operation["responses"].values():
                response.setdefault("headers", {})[REQUEST_ID] = REQUEST_ID_ANSWERED
    return paths


def _secure(paths: dict, settings: Settings, refs: dict[str, dict]) -> dict:
    """Every operation but the probes and the page (and /metrics on its own port) answers 401 without a key."""
    for path, item in paths.items():
        for operation in item.values():
            if path in EXEMPT_PATHS or (path == METRICS_PATH and settings.metrics_port):
                operation["security"] = []
            else:
                schema = refs["PlainErrorAnswer" if speaks_plain_errors(path) else "ErrorAnswer"]
                operation["responses"]["401"] = error_response(401, schema)
    return paths


def openapi_document(settings: Settings) -> dict:
    """The spec served at /openapi.json."""
    refs, components = _schemas()
    status = refs["Status"]
    text = {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}
    metrics, metrics_elsewhere = "Prometheus metrics of every worker.", {}
    if settings.metrics_port:
        metrics += f" Served on port {settings.metrics_port} only, without an API key; 404 on this port."
        metrics_elsewhere = {"404": error_response(404, refs["ErrorAnswer"])}
    paths = {
        "/v1/predict": {"post": _predict(settings, refs)},
        "/v1/models": get_operation(
            "Heads, labels, weights sources, device and batching settings.",
            {
                "200": json_content("Model description.", refs["ModelsAnswer"]),
                "503": json_content("Still loading.", status),
            },
        ),
        "/healthz": get_operation("Liveness: the process answers.", {"200": json_content("Alive.", status)}),
        "/readyz": get_operation(
            "Readiness: weights loaded, warmed up, not draining.",
            {"200": json_content("Ready.", status), "503": json_content("Loading, draining or failed.", status)},
        ),
        METRICS_PATH: get_operation(metrics, {"200": text, **metrics_elsewhere}),
        "/openapi.json": get_operation("This document.", {"200": json_content("OpenAPI 3.1.", {"type": "object"})}),
        **kserve_paths(settings, refs),
        **page.openapi_paths(),
    }
    document: dict = {
        "openapi": "3.1.0",
        "info": {
            "title": "visionserve",
            "version": __version__,
            "description": "ResNet-50 image classification with ImageNet-1k and CIFAR-10 heads. Every answer carries "
            f"an `{REQUEST_ID}` header: the one the request sent when it matches `{SANE_ID.pattern}`, else a new id; "
            "the access log and error answers name it.",
        },
        "paths": _with_request_ids(_secure(paths, settings, refs) if settings.api_keys_file else paths),
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }
    if settings.api_keys_file:
        document["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
    return document
