"""Answers out: a typed answer encoded once by msgspec."""

from __future__ import annotations

from msgspec import Struct
from starlette.responses import Response

from app.answers import encode


def answer(body: Struct, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from a typed answer."""
    return Response(encode(body), status, headers=headers, media_type="application/json")
