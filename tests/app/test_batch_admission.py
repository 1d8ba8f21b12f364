"""Admission by expected wait, batches sized by the measured pace, deadlines and withdrawn items.

The pace is given, not measured, so no test depends on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from starlette.requests import Request

from app.batch_items import DeadlineExceededError, QueueFullError
from app.batching import Batcher
from app.errors import ApiError, Problems
from app.frontends.client_deadline import requested_timeout_s
from app.metrics import Metrics
from app.pace import Pace
from app.pipeline import MAX_RETRY_AFTER_S, Pipeline
from app.settings import TIMEOUT_HEADER, Settings
from tests.app.test_batching import LONG_WAIT_MS, FakeBatchFunction, _guarded, _scenario, _submit
from tests.server.metrics_text import parse


def _dropped(metrics: Metrics, reason: str, stage: str) -> float:
    text = metrics.exposition()[0].decode()
    return sum(
        value
        for name, labels, value in parse(text)
        if name == "visionserve_dropped_images_total" and labels == {"reason": reason, "stage": stage}
    )


def test_the_pace_is_a_moving_average_and_sizes_batches() -> None:
    pace = Pace()
    assert pace.items_within(0.25, 8) == 8 and pace.seconds_for(10) == 0  # unmeasured: no cap, no estimate
    pace.observe(0.8, 8)
    assert pace.seconds_per_item == pytest.approx(0.1)
    pace.observe(0.2, 1)
    assert pace.seconds_per_item == pytest.approx(0.1 + 0.2 * (0.2 - 0.1))
    assert pace.items_within(0.25, 8) == 2 and pace.items_within(0.01, 8) == 1 and pace.items_within(0, 8) == 8


def test_a_request_that_would_wait_too_long_is_refused_but_an_empty_queue_takes_anything() -> None:
    run = FakeBatchFunction(hold=True)

    async def body(batcher: Batcher) -> float:
        first = await _submit(batcher, [1, 2, 3, 4, 5])  # 0.5 s of work > 0.25 s, but nothing was queued
        await asyncio.sleep(0.05)  # the first batch takes two of them; three wait
        with pytest.raises(QueueFullError, match="would wait about 400 ms; the limit is 250 ms") as refused:
            await _submit(batcher, [6])
        run.release.set()
        await _guarded(asyncio.gather(*first))
        return refused.value.drain_s

    drain_s = _scenario(run, body, max_queue_ms=250, max_batch_ms=200, pace=Pace(0.1), max_wait_ms=0)
    assert drain_s == pytest.approx(0.3)  # three queued images at 0.1 s: the basis of Retry-After
    assert run.sizes[0] == 2  # 200 ms of batch at 0.1 s per image


def test_an_item_past_its_deadline_is_dropped_before_it_runs() -> None:
    run = FakeBatchFunction(hold=True)
    metrics = Metrics()

    async def body(batcher: Batcher) -> list[object]:
        blocker = await _submit(batcher, [1])
        await asyncio.sleep(0.05)  # the blocker's batch is running and holds
        async with batcher.admit(2) as admission:
            late = admission.submit([2], deadline=0.0)  # long passed
            timely = admission.submit([3], deadline=math.inf)
        run.release.set()
        return await _guarded(asyncio.gather(*blocker, *late, *timely, return_exceptions=True))

    outcomes = _scenario(run, body, metrics, max_wait_ms=0, max_batch_size=4)
    assert isinstance(outcomes[1], DeadlineExceededError)
    assert outcomes[2].value == 6  # type: ignore[attr-defined]
    assert run.sizes == [1, 1]
    assert _dropped(metrics, "deadline", "queue") == 1


def test_withdrawn_items_leave_the_queue_and_are_counted() -> None:
    run = FakeBatchFunction(hold=True)
    metrics = Metrics()

    async def body(batcher: Batcher) -> tuple[int, int]:
        blocker = await _submit(batcher, [1])
        await asyncio.sleep(0.05)
        gone = await _submit(batcher, [2, 3])
        stays = await _submit(batcher, [4])
        withdrawn = batcher.withdraw(gone, "disconnect")
        left = batcher.queued
        run.release.set()
        await _guarded(asyncio.gather(*blocker, *stays))
        return withdrawn, left

    assert _scenario(run, body, metrics, max_wait_ms=LONG_WAIT_MS, max_batch_size=4) == (2, 1)
    assert run.sizes == [1, 1]  # items 2 and 3 never ran
    assert _dropped(metrics, "disconnect", "queue") == 2


def test_the_watchdog_sees_the_running_batch_and_failures_in_a_row() -> None:
    run = FakeBatchFunction(hold=True)

    async def body(batcher: Batcher) -> tuple[bool, int, int]:
        pending = await _submit(batcher, [1])
        await asyncio.sleep(0.05)
        running = batcher.running_since is not None
        run.fail = True
        run.release.set()
        await _guarded(asyncio.gather(*pending, return_exceptions=True))
        await _guarded(asyncio.gather(*await _submit(batcher, [2]), return_exceptions=True))
        failures = batcher.failed_in_a_row
        run.fail = False
        await _guarded(asyncio.gather(*await _submit(batcher, [3])))
        return running, failures, batcher.failed_in_a_row

    assert _scenario(run, body, max_wait_ms=0) == (True, 2, 0)


def _pipeline(**settings: object) -> Pipeline:
    from concurrent.futures import ThreadPoolExecutor

    return Pipeline(
        Settings(**settings),  # type: ignore[arg-type]
        classifier=None,  # type: ignore[arg-type]
        batcher=None,  # type: ignore[arg-type]
        decode_pool=ThreadPoolExecutor(1),
        metrics=Metrics(),
        draining=lambda: False,
    )


def test_retry_after_follows_the_queue_and_is_spread_so_clients_do_not_return_together() -> None:
    pipeline = _pipeline(retry_after_s=1)
    short = {int(pipeline.retry_headers(0.0)["Retry-After"]) for _ in range(200)}
    assert short == {1, 2}
    long = [int(pipeline.retry_headers(3.0)["Retry-After"]) for _ in range(200)]
    assert min(long) >= 3 and max(long) <= 6 and len(set(long)) >= 3
    assert int(pipeline.retry_headers(10_000.0)["Retry-After"]) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("250", 0.25), ("999999", 30.0)],  # capped by request_timeout_s, not refused
)
def test_a_client_deadline_is_read_in_milliseconds_and_capped(header: str | None, expected: float | None) -> None:
    headers = [] if header is None else [(TIMEOUT_HEADER.lower().encode(), header.encode())]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": headers})
    assert requested_timeout_s(request, 30.0) == expected


@pytest.mark.parametrize("values", [["0"], ["-5"], ["1.5"], ["soon"], ["100", "200"], ["9" * 40]])
def test_a_malformed_or_repeated_deadline_is_a_400(values: list[str]) -> None:
    headers = [(TIMEOUT_HEADER.lower().encode(), value.encode()) for value in values]
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": headers})
    with pytest.raises(ApiError) as refused:
        requested_timeout_s(request, 30.0)
    assert refused.value.problem is Problems.INVALID_TIMEOUT
