"""The guarded protocol in process, over real sockets: timeouts, caps and what normal clients must keep."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import generate_latest

from app.metrics import Metrics
from app.refusals import head_size
from app.settings import Settings
from tests.harness.guarded_server import Served, closed_by_server, guarded_server, read_answer
from tests.server.metrics_text import parse

SHORT = Settings(
    header_timeout_s=0.5, body_timeout_s=0.5, keepalive_timeout_s=3, max_connections=4, max_header_bytes=1024
)
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


class CountingApp:
    """Answers the number of body bytes it read; records what each request saw."""

    def __init__(self, delay_before_reading: float = 0.0) -> None:
        self.delay = delay_before_reading
        self.outcomes: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await asyncio.sleep(self.delay)
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.outcomes.append(f"disconnected after {size}")
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.outcomes.append(f"read {size}")
        body = str(size).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


def post(size: int, extra: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n%s\r\n" % (size, extra)


def run(
    scenario: Callable[[Served], Awaitable[None]],
    app: Any = None,
    settings: Settings = SHORT,
    metrics: Metrics | None = None,
) -> dict[str, float]:
    """Run a client scenario against a fresh server; the rejection counters and gauges it left, by name."""
    metrics = metrics or Metrics()

    async def main() -> None:
        async with guarded_server(app or CountingApp(), settings, metrics) as served:
            await asyncio.wait_for(scenario(served), 60)

    asyncio.run(main())
    samples = parse(generate_latest(metrics.registry).decode())
    found = {labels["reason"]: value for name, labels, value in samples if name == "visionserve_rejections_total"}
    found |= {name: value for name, labels, value in samples if name.startswith("visionserve_connections")}
    return found


async def connect(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(served.host, served.port)


def test_a_header_that_trickles_in_gets_408_after_header_timeout_and_is_closed() -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)

        async def trickle() -> None:  # a line every 0.05 s: the clock runs from the first byte, not the last
            writer.write(b"GET / HTTP/1.1\r\n")
            for _ in range(150):
                await asyncio.sleep(0.05)
                writer.write(b"X: 1\r\n")

        trickling = asyncio.create_task(trickle())
        answer = await read_answer(reader)
        trickling.cancel()
        assert answer.status == 408 and answer.headers["connection"] == "close"
        assert answer.json()["error"]["code"] == "request_timeout"
        assert answer.json()["error"]["accepted"] == {"header_timeout_s": 0.5}
        assert await closed_by_server(reader)
        writer.close()

    assert run(scenario)["request_timeout"] == 1


def test_a_stalled_body_gets_408_and_the_app_lets_go_of_its_partial_body() -> None:
    app = CountingApp()

    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        writer.write(post(100_000) + b"x" * 1000)
        answer = await read_answer(reader)
        assert answer.status == 408 and answer.json()["error"]["accepted"] == {"body_timeout_s": 0.5}
        assert await closed_by_server(reader)
        writer.close()
        for _ in range(100):  # the app's receive() returned http.disconnect: its partial body is dropped
            if app.outcomes:
                break
            await asyncio.sleep(0.01)
        assert not served.state.connections

    assert run(scenario, app)["request_timeout"] == 1
    assert app.outcomes == ["disconnected after 1000"]


def test_a_body_that_keeps_flowing_is_never_cut_however_long_it_takes() -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        chunks = 12  # 12 x 0.2 s: well past body_timeout_s in total, never silent for that long
        writer.write(post(chunks * 1000))
        for _ in range(chunks):
            await asyncio.sleep(0.2)
            writer.write(b"y" * 1000)
        answer = await read_answer(reader)
        assert (answer.status, answer.body) == (200, b"12000")
        writer.close()

    assert run(scenario)["request_timeout"] == 0


def test_a_slow_app_is_not_blamed_on_the_client() -> None:
    """The server stops reading a large body until the app takes it; that silence is not the client's."""

    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        writer.write(post(1024 * 1024) + b"z" * 1024 * 1024)
        answer = await read_answer(reader)
        assert (answer.status, answer.body) == (200, b"1048576")
        writer.close()

    assert run(scenario, CountingApp(delay_before_reading=1.5))["request_timeout"] == 0


def test_a_client_waiting_for_100_continue_is_not_timed_out() -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        writer.write(post(5, b"Expect: 100-continue\r\n"))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert interim.startswith(b"HTTP/1.1 100")
        writer.write(b"hello")
        answer = await read_answer(reader)
        assert (answer.status, answer.body) == (200, b"5")
        writer.close()

    assert run(scenario, CountingApp(delay_before_reading=1.2))["request_timeout"] == 0


def test_keep_alive_reuse_and_pipelining_work_and_an_idle_connection_closes_quietly() -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        writer.write(post(3) + b"abc" + GET + post(2) + b"de")  # three pipelined requests in one write
        assert [(await read_answer(reader)).body for _ in range(3)] == [b"3", b"0", b"2"]
        await asyncio.sleep(1)  # idle, but within keepalive_timeout_s: the connection is reused
        writer.write(GET)
        assert (await read_answer(reader)).status == 200
        started = asyncio.get_running_loop().time()
        assert await closed_by_server(reader, timeout=30)  # closed without an answer: nothing was asked
        assert asyncio.get_running_loop().time() - started >= SHORT.keepalive_timeout_s - 0.1  # not before
        writer.close()

    assert sum(run(scenario).get(reason, 0) for reason in ("request_timeout", "headers_too_large")) == 0


def test_a_new_connection_that_sends_nothing_is_closed_after_the_header_timeout() -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        assert await closed_by_server(reader, timeout=30)  # EOF and not a byte: silence is not answered
        writer.close()

    patient = dataclasses.replace(SHORT, keepalive_timeout_s=600)  # only the header timeout can close it in time
    assert run(scenario, settings=patient)["request_timeout"] == 0


def test_the_connection_over_the_cap_gets_503_json_but_probes_and_the_next_one_once_one_closes_are_served() -> None:
    async def scenario(served: Served) -> None:
        held = [await connect(served) for _ in range(SHORT.max_connections)]
        for reader, writer in held:  # each served once: all held open and idle
            writer.write(GET)
            assert (await read_answer(reader)).status == 200
        reader, writer = await connect(served)
        writer.write(GET)
        answer = await read_answer(reader)
        assert answer.status == 503 and answer.headers["retry-after"] == str(SHORT.retry_after_s)
        assert answer.json()["error"] == {
            "code": "too_many_connections",
            "message": "this worker holds max_connections=4 connections; retry after Retry-After",
            "accepted": {"max_connections": 4},
        }
        assert await closed_by_server(reader)
        writer.close()
        for probe in ("/healthz", "/v2/health/live"):  # a probe over the cap is answered, then its connection closed
            reader, writer = await connect(served)
            writer.write(f"GET {probe} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
            assert (await read_answer(reader)).status == 200
            assert await closed_by_server(reader)
            writer.close()
        reader, writer = await connect(served)  # the Open Inference Protocol's refusal is in its own shape
        writer.write(b"GET /v2/models/resnet50 HTTP/1.1\r\nHost: test\r\n\r\n")
        oip = await read_answer(reader)
        assert oip.status == 503 and oip.json()["code"] == "too_many_connections"
        assert oip.json()["error"].startswith("this worker holds max_connections=4")
        writer.close()
        held[0][1].close()
        await held[0][1].wait_closed()
        for _ in range(100):  # the server notices the close at once
            if len(served.state.connections) < SHORT.max_connections:
                break
            await asyncio.sleep(0.01)
        reader, writer = await connect(served)
        writer.write(GET)
        assert (await read_answer(reader)).status == 200
        for _, other in [*held[1:], (reader, writer)]:
            other.close()

    found = run(scenario)
    assert found["too_many_connections"] == 2
    assert found["visionserve_connections_capacity"] == SHORT.max_connections


@pytest.mark.parametrize("whole", [True, False], ids=["complete", "incomplete"])
def test_a_header_over_max_header_bytes_gets_431_json(whole: bool) -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 2000
        writer.write(head + b"\r\n\r\n" if whole else head)
        answer = await read_answer(reader)
        assert answer.status == 431 and answer.headers["connection"] == "close"
        assert answer.json()["error"]["code"] == "headers_too_large"
        assert answer.json()["error"]["accepted"] == {"max_header_bytes": 1024}
        assert await closed_by_server(reader)
        writer.close()

    assert run(scenario)["headers_too_large"] == 1


def test_a_header_just_under_the_cap_is_served() -> None:
    padding = b"a" * 900

    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nX-Pad: " + padding + b"\r\n\r\n")
        assert (await read_answer(reader)).status == 200
        writer.close()

    assert run(scenario)["headers_too_large"] == 0


def test_bytes_that_are_not_http_get_400_json() -> None:
    async def scenario(served: Served) -> None:
        reader, writer = await connect(served)
        writer.write(b"HELLO THERE\r\n\r\n")
        answer = await read_answer(reader)
        assert answer.status == 400 and answer.json()["error"]["code"] == "malformed_request"
        assert await closed_by_server(reader)
        writer.close()

    assert run(scenario)["invalid_request"] == 1


def test_the_open_connections_gauge_follows_the_connections() -> None:
    metrics = Metrics()
    seen: list[float] = []

    def gauge() -> float:
        samples = parse(generate_latest(metrics.registry).decode())
        return next(value for name, _, value in samples if name == "visionserve_connections_open")

    async def scenario(served: Served) -> None:
        held = [await connect(served) for _ in range(3)]
        for _ in range(100):
            if len(served.state.connections) == 3:
                break
            await asyncio.sleep(0.01)
        seen.append(gauge())
        for _, writer in held:
            writer.close()
        for _ in range(100):
            if not served.state.connections:
                break
            await asyncio.sleep(0.01)
        seen.append(gauge())

    run(scenario, metrics=metrics)
    assert seen == [3, 0]


def test_head_size_counts_the_request_line_and_every_header() -> None:
    scope = {
        "method": "GET",
        "raw_path": b"/v1/models",
        "query_string": b"a=1",
        "headers": [(b"host", b"x"), (b"accept", b"*/*")],
    }
    raw = b"GET /v1/models?a=1 HTTP/1.1\r\nhost: x\r\naccept: */*\r\n\r\n"
    assert head_size(scope) == len(raw)
