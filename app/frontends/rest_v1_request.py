"""The /v1/predict wire format (a raw image, multipart or JSON body, `heads`, `top_k`) into one ClassifyRequest."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import AsyncIterator, Iterable

from starlette.concurrency import run_in_threadpool
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
JSON_EXAMPLE = {"instances": [{"b64": "<base64 image>"}], "heads": "imagenet", "top_k": 5}
MAX_INTEGER_CHARS = 20  # a sign and 19 digits: more than any count or top_k; longer integers are out of range
MAX_PARAMETER_COMMAS = 16  # commas a JSON body may hold beyond two per instance: between fields, in heads


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise _too_large(declared[:24], limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int | str, limit: int) -> ApiError:
    return ApiError(
        Problems.PAYLOAD_TOO_LARGE,
        f"the body is {size}+ bytes; at most {limit} bytes are accepted",
        accepted={"max_body_bytes": limit},
    )


class Parameters:
    """`heads` and `top_k` as the request gave them: each at most once, in the query or the body."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.sources: dict[str, str] = {}

    def give(self, key: str, value: object, source: str) -> None:
        if key in self.sources:
            raise _repeated(key, self.sources[key], source)
        self.values[key] = value
        self.sources[key] = source

    def get(self, key: str) -> object:
        return self.values.get(key)


def _repeated(key: str, first: str, second: str) -> ApiError:
    where = f"twice in the {first}" if first == second else f"in the {first} and in the {second}"
    return ApiError(
        Problems.REPEATED_PARAMETER,
        f"{key!r} is given more than once ({where}); give it once",
        accepted=f"each of {', '.join(JSON_FIELDS)} at most once, in the query or the body",
    )


def _too_many_images(count: int, limit: int) -> ApiError:
    return ApiError(
        Problems.TOO_MANY_IMAGES,
        f"{count} images in one request; at most {limit}",
        accepted={"max_images": limit},
    )


async def parse_predict(request: Request, body: bytes, default_top_k: int, max_images: int) -> ClassifyRequest:
    """Turn the request into images + parameters, or raise a 4xx ApiError."""
    params = _query_parameters(request)
    if not body:
        raise ApiError(Problems.EMPTY_BODY, "the request body is empty; send an image", accepted=BODY_TYPES)
    raw_type = request.headers.get("content-type", "")
    content_type = normalize_content_type(raw_type)
    if content_type in ACCEPTED_CONTENT_TYPES:
        images = [ImageInput("body", body)]
    elif content_type == "multipart/form-data":
        images = await _parse_multipart(request, body, params)
    elif content_type == "application/json":
        images = await run_in_threadpool(_parse_json, body, params, max_images)  # a big body must not stall the loop
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


def _query_parameters(request: Request) -> Parameters:
    items = request.query_params.multi_items()
    unknown = sorted({key for key, _ in items} - set(PARAMETERS))
    if unknown:
        raise ApiError(
            Problems.UNKNOWN_PARAMETER,
            f"unknown query parameter(s): {', '.join(map(repr, unknown))}",
            accepted=list(PARAMETERS),
        )
    params = Parameters()
    for key, value in items:
        params.give(key, value, "query")
    return params


async def _body_stream(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _parse_multipart(request: Request, body: bytes, params: Parameters) -> list[ImageInput]:
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
                name = repr(value.filename) if value.filename else "no filename"
                images.append(ImageInput(f"part {field!r} ({name})", await value.read()))
            elif field in PARAMETERS:
                params.give(field, value, "form")
            else:
                raise ApiError(
                    Problems.UNKNOWN_FIELD,
                    f"unknown form field {field!r}; file parts carry images",
                    accepted=["file parts (any name)", *PARAMETERS],
                )
    finally:
        await form.close()
    return images


class OutOfRange:
    """A JSON number no field of ours can hold (Python's int() would refuse 4,300+ digits with a ValueError)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<a number of {len(self.text)} characters>"

    __str__ = __repr__


def _json_int(text: str) -> int | OutOfRange:
    return OutOfRange(text) if len(text) > MAX_INTEGER_CHARS else int(text)


def _json_float(text: str) -> float | OutOfRange:
    value = float(text)
    return value if math.isfinite(value) else OutOfRange(text)


def _json_constant(name: str) -> None:
    raise ApiError(Problems.MALFORMED_JSON, f"{name} is not a JSON number", accepted=JSON_EXAMPLE)


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json.loads' object hook: a key given twice in one object is refused, not silently overridden."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _repeated(_first_repeated(key for key, _ in pairs), "JSON body", "JSON body")
    return document


def _first_repeated(keys: Iterable[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no key is repeated")


def _check_json_size(body: bytes, max_images: int) -> None:
    """Before parsing, two scans at memory speed bound what the parser may be asked to build.

    Base64 holds neither quotes nor commas, so a valid body has one `"b64"` per instance, and at most two commas
    per instance (a separator, a data: URL) plus a few for the parameters. A body of a million tiny instances, or
    of millions of empty arrays, would otherwise cost the parser seconds of CPU with the GIL held (no thread helps).
    """
    instances = body.count(b'"b64"')
    if instances > max_images:
        raise _too_many_images(instances, max_images)
    commas, budget = body.count(b","), 2 * max_images + MAX_PARAMETER_COMMAS
    if commas > budget:
        raise ApiError(
            Problems.MALFORMED_JSON,
            f"the JSON body holds {commas} commas; a body of at most {max_images} images holds at most {budget}",
            accepted=JSON_EXAMPLE,
        )


def _parse_json(body: bytes, params: Parameters, max_images: int) -> list[ImageInput]:
    """Bound, parse, check the structure and count the instances; only then decode their base64 (in a thread)."""
    _check_json_size(body, max_images)
    try:
        document = json.loads(
            body,
            object_pairs_hook=_json_object,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=_json_constant,
        )
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(Problems.MALFORMED_JSON, f"the body is not valid JSON: {exc}", accepted=JSON_EXAMPLE) from None
    if not isinstance(document, dict):
        raise ApiError(Problems.MALFORMED_JSON, "the JSON body must be an object", accepted=JSON_EXAMPLE)
    unknown = sorted(set(document) - set(JSON_FIELDS))
    if unknown:
        raise ApiError(
            Problems.UNKNOWN_FIELD, f"unknown JSON field(s): {', '.join(map(repr, unknown))}", accepted=JSON_EXAMPLE
        )
    for key in PARAMETERS:
        if key in document:
            value = document[key]
            if any(isinstance(item, OutOfRange) for item in (value if isinstance(value, list) else [value])):
                raise ApiError(
                    Problems.MALFORMED_JSON, f"{key} holds a number out of range: {value!r}", accepted=JSON_EXAMPLE
                )
            params.give(key, ",".join(map(str, value)) if isinstance(value, list) else value, "JSON body")
    instances = document.get("instances")
    if not isinstance(instances, list):
        raise ApiError(
            Problems.MALFORMED_JSON, "'instances' must be a list of {\"b64\": ...} objects", accepted=JSON_EXAMPLE
        )
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or set(instance) != {"b64"} or not isinstance(instance["b64"], str):
            raise ApiError(
                Problems.MALFORMED_JSON,
                f'instances[{index}] must be exactly {{"b64": "<string>"}}',
                accepted=JSON_EXAMPLE,
            )
    if len(instances) > max_images:
        raise _too_many_images(len(instances), max_images)
    return [_decode_instance(index, instance["b64"]) for index, instance in enumerate(instances)]


def _decode_instance(index: int, b64: str) -> ImageInput:
    text = b64.strip()
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
