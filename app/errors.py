"""API errors and their JSON form: what was wrong, and what is accepted."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("visionserve")


_REASON_BY_STATUS = {413: "payload_too_large", 415: "unsupported_media_type", 503: "queue_full"}


class ApiError(Exception):
    """An error answered to the client as JSON with a stable `code`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        accepted: object = None,
        *,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason or _REASON_BY_STATUS.get(status, "invalid_request")
        self.status = status
        self.code = code
        self.message = message
        self.accepted = accepted
        self.headers = headers or {}


def bad_request(code: str, message: str, accepted: object = None) -> ApiError:
    return ApiError(400, code, message, accepted)


def error_body(code: str, message: str, accepted: object = None) -> dict:
    body: dict = {"code": code, "message": message}
    if accepted is not None:
        body["accepted"] = accepted
    return {"error": body}


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    service = getattr(request.app.state, "service", None)
    if service is not None:
        service.metrics.rejections.labels(exc.reason).inc()
    return JSONResponse(error_body(exc.code, exc.message, exc.accepted), exc.status, headers=exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "the server failed to handle this request"), 500)


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    """The client left mid-body: nothing to answer, and not a server error (counted as 499)."""
    return Response(status_code=499)


EXCEPTION_HANDLERS = {
    ClientDisconnect: client_disconnect_handler,
    ApiError: api_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}
