"""The ASGI app, declared as data: routes, middleware, exception handlers, lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.errors import EXCEPTION_HANDLERS
from app.inputs import parse_predict, read_body
from app.metrics import RequestMetricsMiddleware
from app.openapi import openapi_document
from app.service import Service
from app.settings import Settings, load_settings

log = logging.getLogger("visionserve")


def _service(request: Request) -> Service:
    return request.app.state.service


async def predict(request: Request) -> JSONResponse:
    service = _service(request)
    body = await read_body(request, service.settings.max_body_bytes)
    parsed = await parse_predict(request, body, service.settings.default_top_k)
    return JSONResponse(await service.predict(parsed))


async def models(request: Request) -> JSONResponse:
    service = _service(request)
    if service.classifier is None:
        return JSONResponse({"status": service.status}, 503)
    return JSONResponse(service.describe())


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> JSONResponse:
    service = _service(request)
    status = service.status
    return JSONResponse({"status": status}, 200 if status == "ready" else 503)


async def metrics(request: Request) -> Response:
    body, content_type = _service(request).metrics.exposition()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document(_service(request).settings))


ROUTES = [
    Route("/v1/predict", predict, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


def create_app(settings: Settings) -> Starlette:
    """Build the app; the model loads in the lifespan, so readiness stays false until it is warm."""
    service = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await service.start()
        except Exception as exc:
            log.error("visionserve cannot start: %s", exc)
            raise
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(RequestMetricsMiddleware, metrics=service.metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def app_from_environment() -> Starlette:
    """Gunicorn's entry point: settings from CONFIG_FILE and VISIONSERVE_* variables."""
    return create_app(load_settings())
