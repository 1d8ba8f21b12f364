"""What a client asks of its request's time: a deadline header, and leaving (disconnecting) before the answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import ClientDisconnect, Request

from app.errors import ApiError, Problems
from app.settings import TIMEOUT_HEADER

T = TypeVar("T")


def requested_timeout_s(request: Request, cap_s: float) -> float | None:
    """The client's deadline in seconds from X-Request-Timeout-Ms (capped by the server's) or None; 400 if bad."""
    values = request.headers.getlist(TIMEOUT_HEADER)
    if not values:
        return None
    accepted = {TIMEOUT_HEADER: f"one integer from 1 to {round(cap_s * 1000)} (larger values are capped)"}
    if len(values) > 1:
        raise ApiError(Problems.INVALID_TIMEOUT, f"{TIMEOUT_HEADER} is given {len(values)} times", accepted=accepted)
    raw = values[0].strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12 and int(raw) >= 1):
        raise ApiError(Problems.INVALID_TIMEOUT, f"{TIMEOUT_HEADER}={raw[:40]!r} is not accepted", accepted=accepted)
    return min(int(raw) / 1000.0, cap_s)


async def _client_left(request: Request) -> None:
    """Returns when the client disconnects (the body must have been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """The work's result; if the client disconnects first, the work is cancelled and ClientDisconnect raised."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_client_left(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientDisconnect()
