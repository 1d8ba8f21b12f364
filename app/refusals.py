"""A refusal (an ApiError) as the bytes or ASGI messages of its JSON answer, for app/connections.py.

The connection protocol answers before Starlette (or instead of it), so it cannot use the exception handlers; these
build the same `{"error": ...}` body from the same catalogue (in the shape of the path's protocol, when the path is
known), and always close the connection.
"""

from __future__ import annotations

import http
from typing import Any

from msgspec import UNSET

from app.answers import ErrorAnswer, ErrorDetail, PlainErrorAnswer, encode
from app.errors import ApiError, Problems
from app.frontends.errors import speaks_plain_errors
from app.settings import Settings

HTTP_VERSION_LINE = len(b" HTTP/1.1\r\n")
Headers = list[tuple[bytes, bytes]]


def head_size(scope: dict[str, Any]) -> int:
    """Bytes of the request line and headers as parsed (the bytes sent are at least this many)."""
    target = len(scope["raw_path"]) + (len(scope["query_string"]) + 1 if scope["query_string"] else 0)
    headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    return len(scope["method"]) + 1 + target + HTTP_VERSION_LINE + headers + 2


def refusal_body(error: ApiError, path: str = "") -> bytes:
    """The catalogue's JSON error answer, in the shape of `path`'s protocol."""
    if speaks_plain_errors(path):
        return encode(PlainErrorAnswer(error.message, error.code))
    accepted = UNSET if error.accepted is None else error.accepted
    return encode(ErrorAnswer(ErrorDetail(error.code, error.message, accepted)))


def refusal_headers(error: ApiError, body: bytes) -> Headers:
    headers = {"content-type": "application/json", "content-length": str(len(body)), "connection": "close"}
    return [(name.lower().encode(), value.encode()) for name, value in (headers | error.headers).items()]


def refusal_messages(error: ApiError, path: str) -> list[dict[str, Any]]:
    """The ASGI messages of the answer, for a refusal inside a request cycle (to a request for `path`)."""
    body = refusal_body(error, path)
    start = {"type": "http.response.start", "status": error.status, "headers": refusal_headers(error, body)}
    return [start, {"type": "http.response.body", "body": body}]


def refusal_bytes(error: ApiError, default_headers: Headers) -> bytes:
    """The whole HTTP/1.1 answer, for a refusal outside any request cycle (uvicorn's Date and Server first)."""
    body = refusal_body(error)
    status = f"HTTP/1.1 {error.status} {http.HTTPStatus(error.status).phrase}\r\n".encode()
    headers = default_headers + refusal_headers(error, body)
    return status + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body


def too_many_connections(settings: Settings) -> ApiError:
    limit = settings.max_connections
    return ApiError(
        Problems.TOO_MANY_CONNECTIONS,
        f"this worker holds max_connections={limit} connections; retry after Retry-After",
        accepted={"max_connections": limit},
        headers={"Retry-After": str(settings.retry_after_s)},
    )


def headers_too_large(settings: Settings, what: str) -> ApiError:
    limit = settings.max_header_bytes
    return ApiError(Problems.HEADERS_TOO_LARGE, f"{what}, over max_header_bytes={limit}", {"max_header_bytes": limit})


def timed_out(settings: Settings, what: str, setting: str) -> ApiError:
    limit = getattr(settings, setting)
    return ApiError(Problems.REQUEST_TIMEOUT, f"{what} {setting}={limit:g} s", accepted={setting: limit})


def not_http() -> ApiError:
    accepted = "HTTP/1.1: a request line, header lines, then an empty line"
    return ApiError(Problems.MALFORMED_REQUEST, "the request is not valid HTTP/1.1", accepted=accepted)
