"""What every classifying route does before it parses a body: find the pipeline, and refuse early when full."""

from __future__ import annotations

from starlette.requests import Request

from app.errors import ApiError, Problems
from app.lifecycle import Worker
from app.pipeline import Pipeline

DRAIN_LIMIT_BYTES = 64 * 1024  # a refused body up to this size is read and dropped rather than closing the connection


def serving_pipeline(worker: Worker) -> Pipeline:
    """The pipeline, or 503 while the worker is still loading (draining workers keep serving)."""
    if worker.pipeline is None:
        retry = {"Retry-After": str(worker.settings.retry_after_s)}
        raise ApiError(Problems.NOT_READY, f"the service is {worker.status}", headers=retry)
    return worker.pipeline


async def refuse_early_when_full(request: Request, pipeline: Pipeline) -> None:
    """503 before the body is parsed when the queue has no room: a small body is read and dropped (the connection
    stays usable); a large or unsized one is left unread and the connection closes, as HTTP then requires."""
    try:
        pipeline.check_room()
    except ApiError as refusal:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) <= DRAIN_LIMIT_BYTES:
            async for _ in request.stream():
                pass
        else:
            refusal.headers["Connection"] = "close"
        raise
