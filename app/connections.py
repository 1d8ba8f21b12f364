"""Connection hygiene: uvicorn's h11 protocol with header, body and idle timeouts, a connection cap and a header cap.

One timer per connection watches the phase h11 says the connection is in:
- idle, no byte of a request yet: a new connection gets `header_timeout_s` to start its first request, an
  answered one `keepalive_timeout_s`; then it is closed without an answer, as HTTP allows for idle connections;
- header, some bytes of a request but not the whole header: 408 `header_timeout_s` after the first byte, however
  slowly the rest trickles in;
- body, the header is in but not the body: 408 once the client has sent nothing for `body_timeout_s` (never while
  the server itself is not reading), and the partial body is freed;
- busy, the request is complete: no timer, the app is answering.

A connection opened while the worker holds `max_connections` gets 503 `too_many_connections` for its request
(probes and scrapes excepted: a flood must not make the kubelet restart a live worker, nor hide it from
Prometheus; they are answered once, then closed); a request line + headers over `max_header_bytes` gets 431.
Every refusal is the catalogue's JSON, counted in `visionserve_rejections_total`, and closes the connection.
"""

from __future__ import annotations

import asyncio
import enum
import http
import re
from typing import Any

import h11
from msgspec import UNSET
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.answers import ErrorAnswer, ErrorDetail, encode
from app.errors import ApiError, Problems
from app.metrics import UNTRACKED_PATHS, Metrics
from app.settings import Settings

END_OF_HEAD = re.compile(rb"\n\r?\n")  # where h11 ends a request header
HTTP_VERSION_LINE = len(b" HTTP/1.1\r\n")


class Phase(enum.Enum):
    IDLE = "idle"
    HEADER = "header"
    BODY = "body"
    BUSY = "busy"


def use_guarded_protocol(config: Config, settings: Settings, metrics: Metrics) -> None:
    """Make uvicorn serve every connection with `GuardedH11Protocol` for these settings (before the config loads)."""
    config.http = GuardedH11Protocol.bound_to(settings, metrics)
    config.h11_max_incomplete_event_size = settings.max_header_bytes  # h11 refuses a longer incomplete header
    metrics.connections_capacity.set(settings.max_connections)


def head_size(scope: dict[str, Any]) -> int:
    """Bytes of the request line and headers as parsed (the bytes sent are at least this many)."""
    target = len(scope["raw_path"]) + (len(scope["query_string"]) + 1 if scope["query_string"] else 0)
    headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    return len(scope["method"]) + 1 + target + HTTP_VERSION_LINE + headers + 2


def refusal_body(error: ApiError) -> bytes:
    """The catalogue's JSON error answer for a refusal."""
    accepted = UNSET if error.accepted is None else error.accepted
    return encode(ErrorAnswer(ErrorDetail(error.code, error.message, accepted)))


def _refusal_headers(error: ApiError, body: bytes) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return headers + [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]


class GuardedH11Protocol(H11Protocol):
    """uvicorn's H11Protocol with connection hygiene; `bound_to` gives it one worker's settings and metrics."""

    settings: Settings
    metrics: Metrics

    @classmethod
    def bound_to(cls, settings: Settings, metrics: Metrics) -> type[GuardedH11Protocol]:
        """The class uvicorn instantiates once per connection."""
        return type(cls.__name__, (cls,), {"settings": settings, "metrics": metrics})

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.inner_app = self.app
        self.app = self.guard  # uvicorn runs this for every request
        self.timer: asyncio.TimerHandle | None = None
        self.phase = Phase.BUSY
        self.phase_since = 0.0
        self.last_received = 0.0
        self.answered = False  # has served a response: idle then lasts keepalive_timeout_s
        self.over_cap = False
        self.counted = False

    # The connection's life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.over_cap = len(self.connections) >= self.settings.max_connections
        super().connection_made(transport)
        self.metrics.connections_open.inc()
        self.counted = True
        self.watch()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.cancel_timer()
        if self.counted:
            self.counted = False
            self.metrics.connections_open.dec()

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        super().data_received(data)
        self.watch()

    def on_response_complete(self) -> None:
        self.answered = True
        super().on_response_complete()
        self.watch()

    # The one timer
    def current_phase(self) -> Phase:
        state = self.conn.their_state
        if state is h11.IDLE:
            return Phase.HEADER if self.conn.trailing_data[0] else Phase.IDLE
        if state is h11.SEND_BODY:
            return Phase.BODY
        return Phase.BUSY

    def watch(self) -> None:
        """Read the phase again and arm the timer for it (this replaces uvicorn's keep-alive timer)."""
        self._unset_keepalive_if_required()
        if self.transport.is_closing():
            self.cancel_timer()
            return
        phase = self.current_phase()
        if phase is not self.phase:
            self.phase, self.phase_since = phase, self.loop.time()
            self.cancel_timer()
        if phase is not Phase.BUSY and self.timer is None:
            self.timer = self.loop.call_at(self.deadline(), self.on_deadline)

    def deadline(self) -> float:
        settings = self.settings
        if self.phase is Phase.IDLE:
            patient = self.answered and not self.over_cap
            return self.phase_since + (settings.keepalive_timeout_s if patient else settings.header_timeout_s)
        if self.phase is Phase.HEADER:
            return self.phase_since + settings.header_timeout_s
        return max(self.last_received, self.phase_since) + settings.body_timeout_s

    def on_deadline(self) -> None:
        self.timer = None
        if self.transport.is_closing():
            return
        if self.current_phase() is not self.phase:
            self.watch()
            return
        if self.phase is Phase.BODY and self.server_holds_the_body():
            self.last_received = self.loop.time()  # the client is waiting for us, not the other way round
        deadline = self.deadline()
        if self.loop.time() < deadline:
            self.timer = self.loop.call_at(deadline, self.on_deadline)
            return
        self.expire()

    def server_holds_the_body(self) -> bool:
        """Reading is paused (the app has not taken what came), or the client waits for our 100 Continue."""
        return self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)

    def expire(self) -> None:
        settings = self.settings
        if self.phase is Phase.IDLE:
            self.transport.close()
        elif self.phase is Phase.HEADER:
            message = f"the request header was not complete within header_timeout_s={settings.header_timeout_s:g} s"
            self.refuse_now(
                ApiError(Problems.REQUEST_TIMEOUT, message, accepted={"header_timeout_s": settings.header_timeout_s})
            )
        elif self.cycle.response_started:  # answered early; the rest of the body never came
            self.end_cycle()
            self.transport.close()
        else:
            message = f"the request body sent nothing for body_timeout_s={settings.body_timeout_s:g} s"
            self.refuse_now(
                ApiError(Problems.REQUEST_TIMEOUT, message, accepted={"body_timeout_s": settings.body_timeout_s})
            )

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # Refusals
    async def guard(self, scope: Any, receive: Any, send: Any) -> None:
        """Before the app: a connection over the cap, or a complete header over max_header_bytes, is refused."""
        error = self.refusal_for(scope)
        if error is None:
            if self.over_cap:  # a probe or a scrape: answered, then closed, so it holds no place
                self.cycle.keep_alive = False
            await self.inner_app(scope, receive, send)
            return
        self.count(error)
        body = refusal_body(error)
        await send({"type": "http.response.start", "status": error.status, "headers": _refusal_headers(error, body)})
        await send({"type": "http.response.body", "body": body})

    def refusal_for(self, scope: Any) -> ApiError | None:
        settings = self.settings
        if self.over_cap and scope["path"] not in UNTRACKED_PATHS:
            return ApiError(
                Problems.TOO_MANY_CONNECTIONS,
                f"this worker holds max_connections={settings.max_connections} connections; retry after Retry-After",
                accepted={"max_connections": settings.max_connections},
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        size = head_size(scope)
        if size > settings.max_header_bytes:
            return self.headers_too_large(f"the request line and headers are {size} bytes")
        return None

    def headers_too_large(self, what: str) -> ApiError:
        limit = self.settings.max_header_bytes
        return ApiError(
            Problems.HEADERS_TOO_LARGE,
            f"{what}, over max_header_bytes={limit}",
            accepted={"max_header_bytes": limit},
        )

    def send_400_response(self, msg: str) -> None:
        """h11 refused the bytes: 431 when an incomplete header outgrew max_header_bytes, else 400; JSON both."""
        buffered = self.conn.trailing_data[0]
        if len(buffered) > self.settings.max_header_bytes and not END_OF_HEAD.search(buffered):
            error = self.headers_too_large("the request header is still incomplete")
        else:
            accepted = "HTTP/1.1: a request line, header lines, then an empty line"
            error = ApiError(Problems.MALFORMED_REQUEST, "the request is not valid HTTP/1.1", accepted=accepted)
        self.refuse_now(error)

    def refuse_now(self, error: ApiError) -> None:
        """Answer outside any request cycle (the header never completed, or the body stalled), then close."""
        self.count(error)
        answering = self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete
        self.end_cycle()
        if answering:  # too late for another answer
            self.transport.close()
            return
        body = refusal_body(error)
        status = f"HTTP/1.1 {error.status} {http.HTTPStatus(error.status).phrase}\r\n".encode()
        headers = self.server_state.default_headers + _refusal_headers(error, body)
        self.transport.write(status + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n")
        self.transport.write(body)
        self.transport.close()

    def end_cycle(self) -> None:
        """Free a request's buffered body and tell its app the client is gone (its own answer is then dropped)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return
        cycle.body = bytearray()
        cycle.disconnected = True
        cycle.message_event.set()

    def count(self, error: ApiError) -> None:
        self.metrics.rejections.labels(error.problem.reason).inc()
