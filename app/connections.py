"""Connection hygiene: uvicorn's h11 protocol with header, body and idle timeouts, a connection cap and a header cap.

One timer per connection watches the phase h11 says it is in:
- idle, no byte of a request yet: closed without an answer after `keepalive_timeout_s`, or `header_timeout_s` for
  a connection that has not been answered yet (nginx and Go do the same);
- header, part of a request header: 408 `header_timeout_s` after its first byte, however slowly the rest trickles;
- body, part of a body: 408 once the client has sent nothing for `body_timeout_s` (never while the server itself
  is not reading), and the partial body is freed;
- busy, the request is complete: no timer, the app is answering.

After a 503 for a full queue, the connection is not read for the pause the pipeline chose (about the queue's
drain time, at most Retry-After): a client retrying at once waits, unread, for room; a polite one never notices.

A connection opened while the worker holds `max_connections` gets 503 for its request, except probes and scrapes
(answered, then closed: a flood must neither get a live pod restarted nor hide it from Prometheus); a request line +
headers over `max_header_bytes` gets 431. Refusals are the catalogue's JSON, counted, and close the connection.
"""

from __future__ import annotations

import asyncio
import enum
import re
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from app import refusals
from app.errors import ApiError
from app.metrics import UNTRACKED_PATHS, Metrics
from app.settings import Settings

END_OF_HEAD = re.compile(rb"\n\r?\n")  # where h11 ends a request header


class Phase(enum.Enum):
    """What the connection waits for (see the module's docstring)."""

    IDLE = "idle"
    HEADER = "header"
    BODY = "body"
    BUSY = "busy"


def use_guarded_protocol(config: Config, settings: Settings, metrics: Metrics) -> None:
    """Make uvicorn serve every connection with `GuardedH11Protocol` for these settings (before the config loads)."""
    config.http = GuardedH11Protocol.bound_to(settings, metrics)
    config.h11_max_incomplete_event_size = settings.max_header_bytes  # h11 refuses a longer incomplete header
    metrics.connections_capacity.set(settings.max_connections)


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
        self.paused = False  # left unread after a 503 queue_full (counted in connections_paused)

    # The connection's life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.over_cap = len(self.connections) >= self.settings.max_connections
        super().connection_made(transport)
        self.metrics.connections_open.inc()
        self.watch()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.cancel_timer()
        self.stop_counting_pause()
        self.metrics.connections_open.dec()

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        super().data_received(data)
        self.watch()

    def on_response_complete(self) -> None:
        self.answered = True
        pause_s = self.refusal_pause_s()
        if pause_s > 0:  # the next request waits, unread, in the socket: it costs the worker nothing meanwhile
            self.flow.pause_reading()
            self.paused = True
            self.metrics.retry_pauses.inc()
            self.metrics.connections_paused.inc()
            self.loop.call_later(pause_s, self.end_pause)
            return
        super().on_response_complete()
        self.watch()

    def stop_counting_pause(self) -> None:
        if self.paused:
            self.paused = False
            self.metrics.connections_paused.dec()

    def refusal_pause_s(self) -> float:
        """The pause the app asked for with a 503 (queue full) on a connection that stays open, else 0."""
        cycle = self.cycle
        if cycle is None or not cycle.keep_alive or self.transport.is_closing():
            return 0.0
        return float(cycle.scope.get("state", {}).get("pause_s", 0.0))

    def end_pause(self) -> None:
        """Read the connection again, and whatever the client sent meanwhile."""
        self.stop_counting_pause()
        if not self.transport.is_closing():
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
        if self.phase is Phase.IDLE:
            self.transport.close()
        elif self.phase is Phase.HEADER:
            self.refuse_now(
                refusals.timed_out(self.settings, "the request header was not complete within", "header_timeout_s")
            )
        elif self.cycle.response_started:  # answered early; the rest of the body never came
            self.end_cycle()
            self.transport.close()
        else:
            self.refuse_now(refusals.timed_out(self.settings, "the request body sent nothing for", "body_timeout_s"))

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
        for message in refusals.refusal_messages(error, scope["path"]):
            await send(message)

    def refusal_for(self, scope: Any) -> ApiError | None:
        if self.over_cap and scope["path"] not in UNTRACKED_PATHS:
            return refusals.too_many_connections(self.settings)
        size = refusals.head_size(scope)
        if size > self.settings.max_header_bytes:
            return refusals.headers_too_large(self.settings, f"the request line and headers are {size} bytes")
        return None

    def send_400_response(self, msg: str) -> None:
        """h11 refused the bytes: 431 when an incomplete header outgrew max_header_bytes, else 400; JSON both."""
        buffered = self.conn.trailing_data[0]
        if len(buffered) > self.settings.max_header_bytes and not END_OF_HEAD.search(buffered):
            self.refuse_now(refusals.headers_too_large(self.settings, "the request header is still incomplete"))
        else:
            self.refuse_now(refusals.not_http())

    def refuse_now(self, error: ApiError) -> None:
        """Answer outside any request cycle (the header never completed, or the body stalled), then close."""
        self.count(error)
        answering = self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete
        self.end_cycle()
        if answering:  # too late for another answer
            self.transport.close()
            return
        self.transport.write(refusals.refusal_bytes(error, self.server_state.default_headers))
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
