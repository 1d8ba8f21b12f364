"""A worker that cannot start says why in one log line, with the fix; the traceback only at log level debug."""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api_keys import ApiKeysError
from app.models.cifar_head import HOW_TO_SERVE
from app.models.weights import WeightsError
from app.runtimes.base import UnsupportedError
from app.settings import SettingsError

SETTINGS_ARE = "Settings are VISIONSERVE_<NAME> variables, keys of the CONFIG_FILE, or config.<name> in the chart."
FIXES = {
    "weights": (
        "To serve a ResNet-50 state_dict you have: VISIONSERVE_WEIGHTS=/path/to/file.pth (chart: config.weights). "
        "To try the API without trained weights: `make run-random` (VISIONSERVE_WEIGHTS=random)."
    ),
    "cifar_head": f"To serve a head: {HOW_TO_SERVE}. Without the cifar10 head: VISIONSERVE_CIFAR_HEAD=none.",
}
# Failures of the configuration or the files it names: the message says it all. Anything else is a fault of the
# server's own, and keeps its traceback.
EXPLAINED = (WeightsError, UnsupportedError, SettingsError, ApiKeysError)


def explain(exc: BaseException) -> str | None:
    """What went wrong and how to fix it, in one line; None when the traceback is the better explanation."""
    if not isinstance(exc, EXPLAINED):
        return None
    fix = FIXES.get(exc.setting, "") if isinstance(exc, WeightsError) else SETTINGS_ARE
    return f"{exc} {fix}".strip()


class Starting(Protocol):
    """What the middleware reads of the worker (app.lifecycle.Worker)."""

    start_failure: str | None


class QuietStartupFailure:
    """Pure ASGI, outermost: an explained start-up failure is not repeated as a traceback by the server (uvicorn
    logs the text Starlette sends with lifespan.startup.failed). At log level debug the traceback stays."""

    def __init__(self, app: ASGIApp, worker: Starting, debug: bool) -> None:
        self.app = app
        self.worker = worker  # its start_failure is set by the lifespan once it has logged its one line
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" or self.debug:
            await self.app(scope, receive, send)
            return

        async def quiet(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.worker.start_failure:
                message = {**message, "message": ""}
            await send(message)

        await self.app(scope, receive, quiet)
