"""Exception handlers: every refusal answered from the error catalogue, counted under its reason."""

from __future__ import annotations

import logging
import uuid

from msgspec import UNSET, UnsetType
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app.answers import ErrorAnswer, ErrorDetail
from app.errors import ApiError, Problem, Problems
from app.frontends.json_response import answer

log = logging.getLogger("visionserve")

_BY_HTTP_STATUS = {404: Problems.NOT_FOUND, 405: Problems.METHOD_NOT_ALLOWED}


def refuse(
    request: Request,
    problem: Problem,
    message: str,
    accepted: object = None,
    *,
    headers: dict[str, str] | None = None,
    request_id: str | UnsetType = UNSET,
) -> Response:
    """Count the refusal under its reason and answer it as JSON."""
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.metrics.rejections.labels(problem.reason).inc()
    detail = ErrorDetail(problem.code, message, UNSET if accepted is None else accepted, request_id)
    return answer(ErrorAnswer(detail), problem.status, headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return refuse(request, exc.problem, exc.message, exc.accepted, headers=exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Routing's 404 and 405; any other HTTPException is a fault of ours."""
    assert isinstance(exc, HTTPException)
    problem = _BY_HTTP_STATUS.get(exc.status_code)
    if problem is None:
        return await unexpected_error_handler(request, exc)
    return refuse(request, problem, str(exc.detail), headers=exc.headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A server fault: 500 with a request id that the log line names too."""
    request_id = uuid.uuid4().hex
    log.error("request %s: unhandled error on %s %s", request_id, request.method, request.url.path, exc_info=exc)
    message = "the server failed to handle this request; quote the request_id when reporting it"
    return refuse(request, Problems.INTERNAL_ERROR, message, request_id=request_id)


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    """The client left mid-body: nothing to answer, and not a server error (counted as 499)."""
    return Response(status_code=499)


EXCEPTION_HANDLERS = {
    ClientDisconnect: client_disconnect_handler,
    ApiError: api_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}
