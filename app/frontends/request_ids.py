"""Request ids: the client's `X-Request-ID` when it is sane, else a new one; kept in the scope, returned on the answer.

The id lives in the request's state (`request.state.request_id`), where the error handlers and the access log read it.
"""

from __future__ import annotations

import os
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
# Short and printable, with nothing a log line or a header could misread; anything else is replaced, not echoed.
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id() -> str:
    """128 random bits as 32 hex digits (a uuid4's randomness, without building a UUID)."""
    return os.urandom(16).hex()


def accepted_or_new(value: bytes | None) -> str:
    """The client's id when it is sane, else a fresh one."""
    if value is not None and len(value) <= 128:
        text = value.decode("latin-1")
        if SANE_ID.fullmatch(text):
            return text
    return new_request_id()


def request_id_of(request: Request) -> str | None:
    """The id the middleware gave this request (None outside it)."""
    return request.scope.get("state", {}).get("request_id")


class RequestIdMiddleware:
    """Pure ASGI: gives every HTTP request an id and answers it in `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for key, value in scope["headers"] if key == _HEADER_KEY), None)
        request_id = accepted_or_new(given)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_HEADER_KEY, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(key.lower() == _HEADER_KEY for key, _ in headers):
                    headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
