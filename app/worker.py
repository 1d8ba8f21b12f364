"""Gunicorn worker: uvicorn with connection hygiene (app/connections.py), plus a drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from app.connections import use_guarded_protocol


class DrainingServer(Server):
    """On SIGTERM: mark the service draining, keep serving `drain_seconds`, then shut down."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        worker = getattr(getattr(self.config.app, "state", None), "worker", None)
        if sig != signal.SIGTERM or worker is None or worker.draining:
            super().handle_exit(sig, frame)
            return
        worker.mark_draining()
        delay = worker.settings.drain_seconds
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(loop.call_later, delay, super().handle_exit, sig, frame)


class VisionserveWorker(UvicornWorker):
    """UvicornWorker with the draining server; the service logs through gunicorn's error log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logger = logging.getLogger("visionserve")
        logger.handlers = self.log.error_log.handlers
        logger.setLevel(self.log.error_log.level)
        logger.propagate = False

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        worker = self.wsgi.state.worker
        use_guarded_protocol(self.config, worker.settings, worker.metrics)
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
