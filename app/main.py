"""The ASGI app, declared as data: routes, middleware, exception handlers, lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from app.frontends import kserve_v1, oip_v2, operations, page, rest_v1
from app.frontends.access_log import AccessLogMiddleware
from app.frontends.auth import access_middleware
from app.frontends.errors import EXCEPTION_HANDLERS
from app.frontends.request_ids import RequestIdMiddleware
from app.lifecycle import Worker
from app.metrics import RequestMetricsMiddleware
from app.settings import Settings, load_settings
from app.startup import QuietStartupFailure, explain

log = logging.getLogger("visionserve")

ROUTES = [
    Route("/v1/predict", rest_v1.predict, methods=["POST"]),
    Route("/v1/models", rest_v1.models, methods=["GET"]),
    Route("/healthz", operations.healthz, methods=["GET"]),
    Route("/readyz", operations.readyz, methods=["GET"]),
    Route("/metrics", operations.metrics, methods=["GET"]),
    Route("/openapi.json", operations.openapi, methods=["GET"]),
    # The Open Inference Protocol V2 (REST): every model route with and without /versions/{model_version}.
    Route("/v2", oip_v2.server_metadata, methods=["GET"]),
    Route("/v2/health/live", oip_v2.server_live, methods=["GET"]),
    Route("/v2/health/ready", oip_v2.server_ready, methods=["GET"]),
    *(
        Route(f"/v2/models/{{model_name}}{version}{suffix}", handler, methods=[method])
        for version in ("", "/versions/{model_version}")
        for suffix, handler, method in (
            ("", oip_v2.model_metadata, "GET"),
            ("/ready", oip_v2.model_ready, "GET"),
            ("/infer", oip_v2.infer, "POST"),
        )
    ),
    # KServe V1.
    Route("/v1/models/{model_name}:predict", kserve_v1.predict, methods=["POST"]),
    Route("/v1/models/{model_name}", kserve_v1.model_status, methods=["GET"]),
    *page.ROUTES,  # the page at / and its files: no API key needed to load it
]


def create_app(settings: Settings) -> Starlette:
    """Build the app; the model loads in the lifespan, so readiness stays false until it is warm."""
    worker = Worker(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await worker.start()
        except Exception as exc:
            worker.start_failure = explain(exc)
            log.error("visionserve cannot start: %s", worker.start_failure or exc)
            raise
        try:
            yield
        finally:
            await worker.stop()

    access_log = [Middleware(AccessLogMiddleware)] if settings.access_log == "json" else []
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(QuietStartupFailure, worker=worker, debug=settings.log_level == "debug"),
            Middleware(RequestIdMiddleware),  # the id is known to everything inside, errors included
            *access_log,
            Middleware(RequestMetricsMiddleware, metrics=worker.metrics),
            *access_middleware(settings),  # inside the metrics: a 401 is counted like any answer
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.worker = worker
    return app


def app_from_environment() -> Starlette:
    """Gunicorn's entry point: settings from CONFIG_FILE and VISIONSERVE_* variables."""
    return create_app(load_settings())
