"""The real app with a fault put into its batch function: for watchdog, deadline and overload tests only.

Run by gunicorn in place of `app.main:app_from_environment()` (LocalServer(app_spec=SPEC)); nothing in app/
imports it. TEST_BATCH_FAULT picks the fault: `sleep:<seconds>` (every batch takes that long, then answers),
`fail` (every batch raises RuntimeError), `memory` (every batch raises MemoryError).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

from app.main import create_app
from app.settings import load_settings

FAULT_ENV = "TEST_BATCH_FAULT"
SPEC = "tests.harness.faulty_app:app_from_environment()"


def _faulty(run_batch: Callable[[list[Any]], Any], fault: str) -> Callable[[list[Any]], Any]:
    def run(items: list[Any]) -> Any:
        if fault.startswith("sleep:"):
            time.sleep(float(fault.split(":", 1)[1]))
        elif fault == "fail":
            raise RuntimeError("injected fault: the runtime failed")
        elif fault == "memory":
            raise MemoryError("injected fault: /secret/path/of/the/model")
        return run_batch(items)

    return run


def app_from_environment() -> Starlette:
    app = create_app(load_settings())
    worker = app.state.worker
    start = worker.start

    async def start_then_break() -> None:
        await start()  # warm-up ran the real model: the fault hits only served batches
        batcher = worker.pipeline.batcher
        batcher._run_batch = _faulty(batcher._run_batch, os.environ[FAULT_ENV])

    worker.start = start_then_break
    return app
