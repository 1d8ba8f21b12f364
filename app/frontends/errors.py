"""Exception handlers: every refusal answered from the error catalogue, counted under its reason.

A refusal is JSON in the shape its protocol speaks: ours, `{"error": {"code", "message", ...}}`, or under the
Open Inference Protocol's and KServe V1's paths theirs, `{"error": "<message>"}` (with our code beside it).
"""

from __future__ import annotations

import logging

from msgspec import UNSET
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app.answers import ErrorAnswer, ErrorDetail, PlainErrorAnswer
from app.errors import ApiError, Problem, Problems
from app.frontends.json_response import answer
from app.frontends.request_ids import HEADER, new_request_id, request_id_of

log = logging.getLogger("visionserve")

_BY_HTTP_STATUS = {404: Problems.NOT_FOUND, 405: Problems.METHOD_NOT_ALLOWED}
OIP_V2_PREFIX = "/v2"
KSERVE_V1_PREFIX = "/v1/models/"  # /v1/models/{name} and its :predict; /v1/models alone is ours


def speaks_plain_errors(path: str) -> bool:
    """Whether refusals on `path` take the `{"error": "<message>"}` shape (OIP V2 and KServe V1, routed or not)."""
    return path == OIP_V2_PREFIX or path.startswith((OIP_V2_PREFIX + "/", KSERVE_V1_PREFIX))


def refuse(
    request: Request,
    problem: Problem,
    message: str,
    accepted: object = None,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """Count the refusal under its reason, note it for the access log and answer it as JSON with the request id."""
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.metrics.rejections.labels(problem.reason).inc()
    request.state.reason, request.state.code = problem.reason, problem.code
    request_id = request_id_of(request)
    message = message.encode("utf-8", "backslashreplace").decode()  # a lone surrogate from the client cannot encode
    if speaks_plain_errors(request.url.path):
        return answer(PlainErrorAnswer(message, problem.code, request_id or UNSET), problem.status, headers)
    detail = ErrorDetail(problem.code, message, UNSET if accepted is None else accepted, request_id or UNSET)
    return answer(ErrorAnswer(detail), problem.status, headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.pause_s > 0:
        request.state.pause_s = exc.pause_s  # read by the connection (app/connections.py) when the answer is sent
    return refuse(request, exc.problem, exc.message, exc.accepted, headers=exc.headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Routing's 404 and 405; any other HTTPException is a fault of ours."""
    assert isinstance(exc, HTTPException)
    problem = _BY_HTTP_STATUS.get(exc.status_code)
    if problem is None:
        return await unexpected_error_handler(request, exc)
    return refuse(request, problem, str(exc.detail), headers=exc.headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A server fault: 500 with a request id that the log line names too (answered outside the id middleware)."""
    request_id = request_id_of(request)
    if request_id is None:
        request_id = request.state.request_id = new_request_id()
    log.error("request %s: unhandled error on %s %s", request_id, request.method, request.url.path, exc_info=exc)
    message = "the server failed to handle this request; quote the request_id when reporting it"
    return refuse(request, Problems.INTERNAL_ERROR, message, headers={HEADER: request_id})


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    """The client left mid-body: nothing to answer, and not a server error (counted as 499)."""
    return Response(status_code=499)


EXCEPTION_HANDLERS = {
    ClientDisconnect: client_disconnect_handler,
    ApiError: api_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}
