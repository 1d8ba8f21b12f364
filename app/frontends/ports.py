"""The metrics port: with `metrics_port` set, that port answers /metrics only and the main port answers it 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Problems
from app.frontends.errors import refuse

METRICS_PATH = "/metrics"


def on_metrics_port(scope: Scope, metrics_port: int) -> bool:
    """Whether the request came in on the metrics port (the listening socket's port, as the server reports it)."""
    server = scope.get("server")
    return bool(metrics_port) and server is not None and server[1] == metrics_port


class MetricsPortMiddleware:
    """Pure ASGI: /metrics on the metrics port only, everything else on the main port only."""

    def __init__(self, app: ASGIApp, metrics_port: int) -> None:
        self.app = app
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or on_metrics_port(scope, self.metrics_port) == (scope["path"] == METRICS_PATH):
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH:
            message = "/metrics is served on the metrics port, not on this one"
        else:
            message = f"this port serves {METRICS_PATH} only"
        response = refuse(Request(scope), Problems.NOT_FOUND, message)
        await response(scope, receive, send)
