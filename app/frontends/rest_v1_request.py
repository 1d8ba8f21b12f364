"""The /v1/predict wire format (a raw image, multipart or JSON body, `heads`, `top_k`) into one ClassifyRequest."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from app.errors import ApiError, Problems
from app.imaging import ACCEPTED_CONTENT_TYPES, normalize_content_type
from app.pipeline import ClassifyRequest, ImageInput
from app.settings import HEADS, MAX_TOP_K

PARAMETERS = ("heads", "top_k")
JSON_FIELDS = ("instances", *PARAMETERS)
BODY_TYPES = [*ACCEPTED_CONTENT_TYPES, "multipart/form-data", "application/json"]


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        Problems.PAYLOAD_TOO_LARGE,
        f"the body is {size}+ bytes; at most {limit} bytes are accepted",
        accepted={"max_body_bytes": limit},
    )


async def parse_predict(request: Request, body: bytes, default_top_k: int) -> ClassifyRequest:
    """Turn the request into images + parameters, or raise a 4xx ApiError."""
    unknown = sorted(set(request.query_params) - set(PARAMETERS))
    if unknown:
        raise ApiError(
            Problems.UNKNOWN_PARAMETER, f"unknown query parameter(s): {', '.join(unknown)}", accepted=list(PARAMETERS)
        )
    params: dict[str, object] = {key: request.query_params[key] for key in PARAMETERS if key in request.query_params}
    if not body:
        raise ApiError(Problems.EMPTY_BODY, "the request body is empty; send an image", accepted=BODY_TYPES)
    raw_type = request.headers.get("content-type", "")
    content_type = normalize_content_type(raw_type)
    if content_type in ACCEPTED_CONTENT_TYPES:
        images = [ImageInput("body", body)]
    elif content_type == "multipart/form-data":
        images = await _parse_multipart(request, body, params)
    elif content_type == "application/json":
        images = _parse_json(body, params)
    elif content_type.startswith("image/"):
        raise ApiError(
            Problems.UNSUPPORTED_IMAGE_FORMAT, f"Content-Type {content_type} is not accepted", accepted=BODY_TYPES
        )
    else:
        what = f"Content-Type {raw_type!r}" if raw_type else "a missing Content-Type"
        raise ApiError(Problems.UNSUPPORTED_CONTENT_TYPE, f"{what} is not accepted", accepted=BODY_TYPES)
    if not images:
        raise ApiError(Problems.NO_IMAGES, "the request holds no image", accepted=BODY_TYPES)
    return ClassifyRequest(images, parse_heads(params.get("heads")), parse_top_k(params.get("top_k"), default_top_k))


def _merge(params: dict[str, object], key: str, value: object) -> None:
    if key in params and str(params[key]) != str(value):
        raise ApiError(
            Problems.CONFLICTING_PARAMETER,
            f"{key} is given twice with different values ({params[key]!r} and {value!r})",
            accepted="give it once, in the query or the body",
        )
    params[key] = value


async def _body_stream(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _parse_multipart(request: Request, body: bytes, params: dict[str, object]) -> list[ImageInput]:
    parser = MultiPartParser(
        request.headers, _body_stream(body), max_files=1000, max_fields=100, max_part_size=len(body) + 1
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(
            Problems.MALFORMED_MULTIPART,
            f"the multipart body cannot be parsed: {exc.message}",
            accepted="multipart/form-data with a boundary, one image per file part",
        ) from None
    images: list[ImageInput] = []
    try:
        for field, value in form.multi_items():
            if isinstance(value, UploadFile):
                images.append(ImageInput(f"part {field!r} ({value.filename or 'no filename'})", await value.read()))
            elif field in PARAMETERS:
                _merge(params, field, value)
            else:
                raise ApiError(
                    Problems.UNKNOWN_FIELD,
                    f"unknown form field {field!r}; file parts carry images",
                    accepted=["file parts (any name)", *PARAMETERS],
                )
    finally:
        await form.close()
    return images


def _parse_json(body: bytes, params: dict[str, object]) -> list[ImageInput]:
    example = {"instances": [{"b64": "<base64 image>"}], "heads": "imagenet", "top_k": 5}
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(Problems.MALFORMED_JSON, f"the body is not valid JSON: {exc}", accepted=example) from None
    if not isinstance(document, dict):
        raise ApiError(Problems.MALFORMED_JSON, "the JSON body must be an object", accepted=example)
    unknown = sorted(set(document) - set(JSON_FIELDS))
    if unknown:
        raise ApiError(Problems.UNKNOWN_FIELD, f"unknown JSON field(s): {', '.join(unknown)}", accepted=example)
    for key in PARAMETERS:
        if key in document:
            value = document[key]
            _merge(params, key, ",".join(map(str, value)) if isinstance(value, list) else value)
    instances = document.get("instances")
    if not isinstance(instances, list):
        raise ApiError(
            Problems.MALFORMED_JSON, "'instances' must be a list of {\"b64\": ...} objects", accepted=example
        )
    return [_decode_instance(i, instance, example) for i, instance in enumerate(instances)]


def _decode_instance(index: int, instance: object, example: dict) -> ImageInput:
    if not isinstance(instance, dict) or set(instance) != {"b64"} or not isinstance(instance["b64"], str):
        raise ApiError(
            Problems.MALFORMED_JSON, f'instances[{index}] must be exactly {{"b64": "<string>"}}', accepted=example
        )
    text = instance["b64"].strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]  # a data URL: keep the payload
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(
            Problems.MALFORMED_BASE64,
            f"instances[{index}].b64 is not valid base64: {exc}",
            accepted="standard base64 (RFC 4648), optionally as a data: URL",
        ) from None
    return ImageInput(f"instances[{index}]", data)


def parse_heads(raw: object) -> frozenset[str]:
    """'imagenet,cifar10' -> {'imagenet', 'cifar10'}; default imagenet."""
    if raw is None:
        return frozenset({"imagenet"})
    names = [name.strip() for name in str(raw).split(",")]
    if not names or any(name not in HEADS for name in names):
        raise ApiError(Problems.UNKNOWN_HEAD, f"heads={raw!r} names an unknown head", accepted=list(HEADS))
    return frozenset(names)


def parse_top_k(raw: object, default: int) -> int:
    if raw is None:
        return default
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or not 1 <= value <= MAX_TOP_K:
        raise ApiError(
            Problems.INVALID_TOP_K,
            f"top_k={raw!r} is not an integer from 1 to {MAX_TOP_K}",
            accepted={"min": 1, "max": MAX_TOP_K},
        )
    return value
