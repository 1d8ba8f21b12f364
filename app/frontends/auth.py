"""API keys: every route but the probes and the page (and the metrics port) needs `Authorization: Bearer <key>`
or `X-API-Key`."""

from __future__ import annotations

import logging
import os

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api_keys import ApiKeys
from app.errors import Problems
from app.frontends.errors import refuse
from app.frontends.page import PAGE_PATHS
from app.frontends.ports import MetricsPortMiddleware, on_metrics_port
from app.metrics import PROBE_PATHS
from app.settings import Settings

log = logging.getLogger("visionserve")

# The kubelet's probes carry no key; the page and its files must load without one, so that a user can enter one
# (the API calls it makes still need it).
EXEMPT_PATHS = PROBE_PATHS | PAGE_PATHS
ACCEPTED = ["Authorization: Bearer <key>", "X-API-Key: <key>"]
CLIENT_KEY_VARIABLE = "VISIONSERVE_API_KEY"


def presented_keys(scope: Scope) -> list[bytes]:
    """The keys a request offers: a Bearer token and/or an X-API-Key header."""
    keys = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                keys.append(token.strip())
        elif name == b"x-api-key" and value.strip():
            keys.append(value.strip())
    return keys


class ApiKeyMiddleware:
    """Pure ASGI: refuse a request without an accepted key with 401 before anything reads its body."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, metrics_port: int = 0) -> None:
        self.app = app
        self.keys = keys
        self.metrics_port = metrics_port

    def exempt(self, scope: Scope) -> bool:
        return scope["path"] in EXEMPT_PATHS or on_metrics_port(scope, self.metrics_port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        offered = presented_keys(scope)
        if any([self.keys.accepts(key) for key in offered]):  # a list: every offered key is compared
            await self.app(scope, receive, send)
            return
        challenge = 'Bearer realm="visionserve"'
        if offered:
            challenge += ', error="invalid_token"'
        message = "the API key is not accepted" if offered else "an API key is required"
        response = refuse(
            Request(scope), Problems.UNAUTHORIZED, message, ACCEPTED, headers={"WWW-Authenticate": challenge}
        )
        await response(scope, receive, send)


def access_middleware(settings: Settings) -> list[Middleware]:
    """The metrics port split and the API key check that the settings ask for (the keys are read here, once)."""
    stack = []
    if settings.metrics_port:
        stack.append(Middleware(MetricsPortMiddleware, metrics_port=settings.metrics_port))
    if settings.api_keys_file:
        keys = ApiKeys(settings.api_keys_file)
        stack.append(Middleware(ApiKeyMiddleware, keys=keys, metrics_port=settings.metrics_port))
    elif os.environ.get(CLIENT_KEY_VARIABLE):
        log.warning(
            "%s is set, but only the visionserve client commands read it: the server takes its keys from "
            "api_keys_file, which is empty, so no API key is required",
            CLIENT_KEY_VARIABLE,
        )
    return stack
