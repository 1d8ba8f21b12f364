"""The access log: one JSON line per request on the logger `visionserve.access`, beside the service's log (stderr).

Fields: time (UTC, when the request arrived), request_id, method, route (the route's path template, or
"<unmatched>"), status, images (when the front end counted them), latency_ms, reason and code (the catalogue's,
when refused), client ("host:port"). The front end and the error handlers leave `images`, `reason` and `code` in
the request's state; the request id middleware leaves `request_id` there.
Successful probes and scrapes (/healthz, /readyz, /metrics) are not logged: they would drown the traffic.
"""

from __future__ import annotations

import functools
import logging
import sys
import time

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import Problems
from app.metrics import UNTRACKED_PATHS

ACCESS_LOGGER = "visionserve.access"
SERVICE_LOGGER = "visionserve"  # under gunicorn, app/worker.py gives it the error log's handlers (stderr)
UNMATCHED = "<unmatched>"
_encode = msgspec.json.Encoder().encode


class RawLineHandler(logging.Handler):
    """Writes each record's message alone, one line, to the streams of the service logger's handlers.

    So an access line is pure JSON (no "[time] [pid] [INFO]" prefix), yet goes where the service's log goes and
    follows a log file reopened by gunicorn. With no such handler (the app in process), it writes to stderr.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage() + "\n"
            targets = logging.getLogger(SERVICE_LOGGER).handlers
            if not targets:
                sys.stderr.write(line)
                return
            for target in targets:
                stream = getattr(target, "stream", None)
                if stream is None:
                    target.handle(record)
                    continue
                target.acquire()
                try:
                    stream.write(line)
                    stream.flush()
                finally:
                    target.release()
        except Exception:
            self.handleError(record)


def access_logger() -> logging.Logger:
    """`visionserve.access`, at INFO whatever the service's log level, writing raw lines (idempotent)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(handler, RawLineHandler) for handler in logger.handlers):
        logger.addHandler(RawLineHandler())
    return logger


@functools.lru_cache(maxsize=1)
def _utc_second(whole: int) -> str:
    """strftime once a second, not once a request."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def _utc(seconds: float) -> str:
    whole = int(seconds)
    return f"{_utc_second(whole)}.{int((seconds - whole) * 1000):03d}Z"


def access_line(scope: Scope, status: int | None, started: float, latency_s: float) -> str:
    """The JSON line for one request."""
    state = scope.get("state", {})
    route = getattr(scope.get("route"), "path", None) or UNMATCHED
    client = scope.get("client")
    record = {
        "time": _utc(started),
        "request_id": state.get("request_id"),
        "method": scope["method"][:32],
        "route": route,
        "status": status,
        "images": state.get("images"),
        "latency_ms": round(latency_s * 1000.0, 3),
        "reason": state.get("reason"),
        "code": state.get("code"),
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    return _encode(record).decode()


class AccessLogMiddleware:
    """Pure ASGI: logs one line when the answer has been sent (or the app failed: status 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_wall, started = time.time(), time.perf_counter()
        status: int | None = None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception:
            if status is None:  # the server error middleware answers 500 after this
                status = Problems.INTERNAL_ERROR.status
                state = scope.setdefault("state", {})
                state["reason"], state["code"] = Problems.INTERNAL_ERROR.reason, Problems.INTERNAL_ERROR.code
            raise
        finally:
            if not (scope["path"] in UNTRACKED_PATHS and status is not None and status < 400):
                self.log.info(access_line(scope, status, started_wall, time.perf_counter() - started))
