"""What operators and tools call: liveness, readiness, metrics, and the OpenAPI document."""

from __future__ import annotations

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.answers import Status
from app.frontends.json_response import answer
from app.lifecycle import UNHEALTHY
from app.openapi import openapi_document


async def healthz(request: Request) -> Response:
    """Liveness: 503 once the watchdog finds the worker stalled or failed, so Kubernetes restarts it."""
    worker = request.app.state.worker
    status = worker.status
    if status in UNHEALTHY:
        return answer(Status(status, worker.problem()), 503)
    return answer(Status("alive"))


async def readyz(request: Request) -> Response:
    """Readiness of the pod: this worker and every sibling worker ready."""
    status, detail = request.app.state.worker.pod_status()
    return answer(Status(status, detail or UNSET), 200 if status == "ready" else 503)


async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.worker.metrics.exposition()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.state.worker.settings))
