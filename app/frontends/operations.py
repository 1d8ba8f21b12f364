"""What operators and tools call: liveness, readiness, metrics, and the OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.answers import Status
from app.frontends.json_response import answer
from app.openapi import openapi_document


async def healthz(request: Request) -> Response:
    return answer(Status("alive"))


async def readyz(request: Request) -> Response:
    status = request.app.state.worker.status
    return answer(Status(status), 200 if status == "ready" else 503)


async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.worker.metrics.exposition()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.state.worker.settings))
