"""What passes through the batcher: queued jobs, their outputs, and why items are refused or dropped."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Out = TypeVar("Out")


class QueueFullError(Exception):
    """The queue cannot take these items now; the client should retry after about `drain_s`."""

    def __init__(self, message: str, drain_s: float = 0.0) -> None:
        super().__init__(message)
        self.drain_s = drain_s


class ShuttingDownError(QueueFullError):
    """The batcher stopped (shutdown or failure); the client should retry on another worker."""


class DeadlineExceededError(Exception):
    """The item's deadline passed before its batch ran; it was dropped."""


@dataclass(frozen=True)
class Batched(Generic[Out]):
    """One item's output and what its batch cost it."""

    value: Out
    queue_s: float
    inference_s: float
    batch_size: int


@dataclass
class Job:
    item: Any
    future: asyncio.Future
    deadline: float  # time.monotonic() after which the item is not worth running
    enqueued: float = field(default_factory=time.monotonic)


class Admission:
    """Room for `count` items, held until they are submitted or the admission ends."""

    def __init__(self, enqueue: Callable[[Sequence[Any], int, float], list[asyncio.Future]], count: int) -> None:
        self._enqueue = enqueue
        self.unsubmitted = count

    def submit(self, items: Sequence[Any], deadline: float = math.inf) -> list[asyncio.Future]:
        """Queue items admitted here; each future resolves to a Batched output (or DeadlineExceededError)."""
        if len(items) > self.unsubmitted:
            raise ValueError(f"{len(items)} items submitted on an admission of {self.unsubmitted}")
        self.unsubmitted -= len(items)
        return self._enqueue(items, len(items), deadline)
