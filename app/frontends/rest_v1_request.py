"""The /v1/predict wire format (a raw image, multipart or JSON body, `heads`, `top_k`) into one ClassifyRequest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from app.errors import ApiError, Problems
from app.frontends.rest_v1_json import parse_json
from app.frontends.rest_v1_params import PARAMETERS, Parameters, parse_heads, parse_top_k
from app.imaging import ACCEPTED_CONTENT_TYPES, normalize_content_type
from app.pipeline import ClassifyRequest, ImageInput
from app.signatures import looks_like_an_image

# Raw bodies whose type says nothing about the picture: curl --data-binary without -H sends the form type, a client
# that knows nothing better octet-stream, some none at all. Their bytes decide (app/signatures.py).
SNIFFED_TYPES = ("application/octet-stream", "application/x-www-form-urlencoded", "")
BODY_TYPES = [*ACCEPTED_CONTENT_TYPES, "multipart/form-data", "application/json", "application/octet-stream"]


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


async def parse_predict(request: Request, body: bytes, default_top_k: int, max_images: int) -> ClassifyRequest:
    """Turn the request into images + parameters, or raise a 4xx ApiError."""
    params = query_parameters(request)
    if not body:
        raise ApiError(Problems.EMPTY_BODY, "the request body is empty; send an image", accepted=BODY_TYPES)
    raw_type = request.headers.get("content-type", "")
    content_type = normalize_content_type(raw_type)
    if content_type in ACCEPTED_CONTENT_TYPES or (content_type in SNIFFED_TYPES and looks_like_an_image(body)):
        images = [ImageInput("body", body)]
    elif content_type == "multipart/form-data":
        images = await _parse_multipart(request, body, params)
    elif content_type == "application/json":
        images = await run_in_threadpool(parse_json, body, params, max_images)  # a big body must not stall the loop
    elif content_type.startswith("image/"):
        raise ApiError(
            Problems.UNSUPPORTED_IMAGE_FORMAT, f"Content-Type {content_type} is not accepted", accepted=BODY_TYPES
        )
    else:
        what = f"Content-Type {raw_type!r}" if raw_type else "a missing Content-Type"
        why = (
            "is accepted only for a body that is an image, and this one is not"
            if content_type in SNIFFED_TYPES
            else "is not accepted"
        )
        raise ApiError(Problems.UNSUPPORTED_CONTENT_TYPE, f"{what} {why}", accepted=BODY_TYPES)
    if not images:
        raise ApiError(Problems.NO_IMAGES, "the request holds no image", accepted=BODY_TYPES)
    return ClassifyRequest(images, parse_heads(params.get("heads")), parse_top_k(params.get("top_k"), default_top_k))


def query_parameters(request: Request) -> Parameters:
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


FilePart = tuple[str | None, bytes]  # a file part's filename and bytes


def _multipart_items(headers: Headers, body: bytes) -> list[tuple[str, str | FilePart]]:
    """The body's parts, parsed in this (pool) thread on a private event loop: parsing a 10 MiB part on the server's
    loop held it about 150 ms."""

    async def parse() -> list[tuple[str, str | FilePart]]:
        limits = {"max_files": 1000, "max_fields": 100, "max_part_size": len(body) + 1}
        parser = MultiPartParser(headers, _body_stream(body), **limits)
        form = await parser.parse()
        try:
            return [
                (field, (value.filename, await value.read()) if isinstance(value, UploadFile) else value)
                for field, value in form.multi_items()
            ]
        finally:
            await form.close()

    return asyncio.run(parse())


async def _parse_multipart(request: Request, body: bytes, params: Parameters) -> list[ImageInput]:
    try:
        items = await run_in_threadpool(_multipart_items, request.headers, body)
    except MultiPartException as exc:
        raise ApiError(
            Problems.MALFORMED_MULTIPART,
            f"the multipart body cannot be parsed: {exc.message}",
            accepted="multipart/form-data with a boundary, one image per file part",
        ) from None
    images: list[ImageInput] = []
    for field, value in items:
        if isinstance(value, tuple):
            filename, data = value
            name = repr(filename) if filename else "no filename"
            images.append(ImageInput(f"part {field!r} ({name})", data))
        elif field in PARAMETERS:
            params.give(field, value, "form")
        else:
            raise ApiError(
                Problems.UNKNOWN_FIELD,
                f"unknown form field {field!r}; file parts carry images",
                accepted=["file parts (any name)", *PARAMETERS],
            )
    return images
