"""The OpenAPI 3.1 description of the API, built from the same constants the code enforces."""

from __future__ import annotations

from app import __version__
from app.imaging import ACCEPTED_CONTENT_TYPES, ACCEPTED_FORMATS
from app.inputs import MAX_TOP_K
from app.settings import HEADS, Settings

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_response(description: str, headers: dict | None = None) -> dict:
    response: dict = {"description": description, "content": {"application/json": {"schema": _ERROR}}}
    if headers:
        response["headers"] = headers
    return response


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _models_schema() -> dict:
    weights = {
        "type": "object",
        "required": ["kind", "source", "sha256"],
        "properties": {
            "kind": {"enum": ["torchvision", "file", "random", "none"]},
            "source": {"type": "string", "description": "Where the weights came from, in plain words."},
            "sha256": {"type": ["string", "null"]},
        },
    }
    head = {
        "type": "object",
        "required": ["available", "classes", "labels", "weights"],
        "properties": {
            "available": {"type": "boolean"},
            "classes": {"type": "integer"},
            "labels": {"type": "array", "items": {"type": "string"}},
            "weights": weights,
        },
    }
    numbers = {"type": "object", "additionalProperties": {"type": "number"}}
    return {
        "type": "object",
        "required": ["model", "heads", "batching", "limits"],
        "properties": {
            "model": {
                "type": "object",
                "required": ["name", "version", "device", "random_weights"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "server_version": {"type": "string"},
                    "device": {"type": "string"},
                    "torch_threads": {"type": "integer"},
                    "random_weights": {"type": "boolean", "description": "True when any head serves random weights."},
                },
            },
            "heads": {"type": "object", "required": list(HEADS), "properties": {name: head for name in HEADS}},
            "batching": numbers,
            "limits": numbers,
        },
    }


def _schemas() -> dict:
    label = {
        "type": "object",
        "required": ["label", "index", "score"],
        "properties": {
            "label": {"type": "string"},
            "index": {"type": "integer", "minimum": 0},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    prediction = {
        "type": "object",
        "required": ["image", "heads", "batch_size", "timings_ms"],
        "properties": {
            "image": {"type": "integer", "description": "Position of the image in the request."},
            "heads": {
                "type": "object",
                "description": "Top-k per requested head, best first.",
                "additionalProperties": {"type": "array", "items": label},
            },
            "batch_size": {"type": "integer", "description": "Images in the forward pass that answered it."},
            "timings_ms": {
                "type": "object",
                "properties": {k: {"type": "number"} for k in ("preprocess", "queue", "inference")},
            },
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "accepted": {"description": "What would have been accepted."},
                    },
                }
            },
        },
        "PredictResponse": {
            "type": "object",
            "required": ["model", "weights", "predictions", "timings_ms"],
            "properties": {
                "model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
                "weights": {
                    "type": "object",
                    "description": "Weights source of each requested head.",
                    "additionalProperties": {"type": "string"},
                },
                "predictions": {"type": "array", "items": prediction},
                "timings_ms": {"type": "object", "properties": {"total": {"type": "number"}}},
            },
        },
        "JsonPredictRequest": {
            "type": "object",
            "required": ["instances"],
            "additionalProperties": False,
            "properties": {
                "instances": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["b64"],
                        "additionalProperties": False,
                        "properties": {"b64": {"type": "string", "contentEncoding": "base64"}},
                    },
                },
                "heads": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"enum": list(HEADS)}}]},
                "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
            },
        },
        "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "Models": _models_schema(),
    }


def openapi_document(settings: Settings) -> dict:
    """The spec served at /openapi.json."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    retry = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}
    predict = {
        "summary": "Classify one or more images with the ImageNet-1k and/or CIFAR-10 head.",
        "parameters": [
            {
                "name": "heads",
                "in": "query",
                "schema": {"type": "string", "default": "imagenet"},
                "description": f"Comma-separated heads: {', '.join(HEADS)}. Both cost one backbone pass.",
            },
            {
                "name": "top_k",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": settings.default_top_k},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                **{content_type: binary for content_type in ACCEPTED_CONTENT_TYPES},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "description": "Every file part is an image, "
                        "whatever its name; optional text fields heads and top_k.",
                        "additionalProperties": {"type": "string", "format": "binary"},
                    }
                },
                "application/json": {"schema": {"$ref": "#/components/schemas/JsonPredictRequest"}},
            },
        },
        "responses": {
            "200": _json("Top-k labels per image and head.", {"$ref": "#/components/schemas/PredictResponse"}),
            "400": _error_response("Malformed input: empty body, bad image, unknown head, bad top_k, bad JSON."),
            "413": _error_response(
                f"Body over {settings.max_body_bytes} bytes, image over {settings.max_pixels} "
                f"pixels, or over {settings.max_images} images."
            ),
            "415": _error_response(f"Content type or image format not accepted ({', '.join(ACCEPTED_FORMATS)})."),
            "503": _error_response("Queue full, loading or draining: retry after Retry-After.", retry),
        },
    }
    status = {"$ref": "#/components/schemas/Status"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "visionserve",
            "version": __version__,
            "description": "ResNet-50 image classification with ImageNet-1k and CIFAR-10 heads.",
        },
        "paths": {
            "/v1/predict": {"post": predict},
            "/v1/models": {
                "get": {
                    "summary": "Heads, labels, weights sources, device and batching settings.",
                    "responses": {
                        "200": _json("Model description.", {"$ref": "#/components/schemas/Models"}),
                        "503": _json("Still loading.", status),
                    },
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness: the process answers.", "responses": {"200": _json("Alive.", status)}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: weights loaded, warmed up, not draining.",
                    "responses": {"200": _json("Ready.", status), "503": _json("Loading or draining.", status)},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of every worker.",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document.", "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"})}}
            },
        },
        "components": {"schemas": _schemas()},
    }
