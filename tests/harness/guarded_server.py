"""The guarded HTTP protocol (app/connections.py) served in process on 127.0.0.1, and a raw-socket client for it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from app.connections import GuardedH11Protocol, use_guarded_protocol
from app.metrics import Metrics
from app.settings import Settings


@dataclass
class Served:
    """A listening protocol server: its address and uvicorn's shared state (the open connections)."""

    host: str
    port: int
    state: ServerState


@contextlib.asynccontextmanager
async def guarded_server(app: Any, settings: Settings, metrics: Metrics) -> AsyncIterator[Served]:
    """Serve `app` with the guarded protocol, as the worker does, on a free port of 127.0.0.1."""
    config = Config(app=app, log_config=None, lifespan="off")
    use_guarded_protocol(config, settings, metrics)
    config.load()
    state = ServerState()
    protocol: type[GuardedH11Protocol] = config.http_protocol_class  # type: ignore[assignment]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield Served(host, port, state)
    finally:
        server.close()
        for connection in list(state.connections):
            connection.shutdown()
        await server.wait_closed()


@dataclass
class Answer:
    """One HTTP answer read off a socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader, timeout: float = 30.0) -> Answer:
    """Read one response with a Content-Length body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), timeout)
    return Answer(status, headers, body)


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 30.0) -> bool:
    """True once the server closes the connection (EOF or reset) within `timeout`, with no more bytes."""
    try:
        rest = await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return rest == b""
