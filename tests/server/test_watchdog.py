"""The watchdog over real gunicorn: a stalled forward or failing batches take the worker out, and /readyz speaks
for every worker of the pod; a server fault is a 500 with a request id and no exception text."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest
import requests

from tests.harness.faulty_app import FAULT_ENV, SPEC
from tests.harness.local_server import LocalServer
from tests.server.metrics_text import total

pytestmark = pytest.mark.service

BASE = {"weights": "random", "runtime": "torch", "torch_threads": 1, "max_batch_size": 1, "graceful_timeout": 5}


def _post(url: str, body: bytes, timeout: float = 60) -> requests.Response:
    return requests.post(f"{url}/v1/predict", data=body, headers={"Content-Type": "image/jpeg"}, timeout=timeout)


def _probe(url: str, path: str) -> tuple[int, dict]:
    response = requests.get(f"{url}{path}", headers={"Connection": "close"}, timeout=10)
    return response.status_code, response.json()


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the watchdog never acted"
        time.sleep(0.2)


def test_a_stalled_forward_makes_the_pod_not_ready_and_the_worker_not_live(jpeg_bytes: bytes) -> None:
    settings = {**BASE, "workers": 2, "watchdog_forward_s": 2}
    with LocalServer(settings, app_spec=SPEC, extra_env={FAULT_ENV: "sleep:30"}) as server:
        with contextlib.suppress(requests.Timeout):
            _post(server.url, jpeg_bytes, timeout=1)  # one worker starts a forward that will not end in time
        _eventually(lambda: _probe(server.url, "/readyz")[0] == 503)
        # Every new connection may reach either worker: all answer for the pod, so all say not ready.
        readiness = [_probe(server.url, "/readyz") for _ in range(8)]
        assert {status for status, _ in readiness} == {503}
        assert any("stalled" in (body["status"] + body.get("detail", "")) for _, body in readiness)
        # The stalled worker fails liveness (the other answers 200); the kernel picks which worker accepts, so ask
        # until the stalled one has answered.
        _eventually(lambda: _probe(server.url, "/healthz")[0] == 503, timeout=20)
        assert "a forward pass has run" in server.log()


def test_failing_batches_take_the_worker_out_after_the_configured_count(jpeg_bytes: bytes) -> None:
    settings = {**BASE, "workers": 1, "watchdog_failed_batches": 3}
    with LocalServer(settings, app_spec=SPEC, extra_env={FAULT_ENV: "fail"}) as server:
        for attempt in range(3):
            assert _probe(server.url, "/readyz")[0] == 200, attempt
            response = _post(server.url, jpeg_bytes)
            assert response.status_code == 500
        _eventually(lambda: _probe(server.url, "/readyz")[0] == 503)
        status, body = _probe(server.url, "/healthz")
        assert status == 503 and body["status"] == "failed" and "3 batches in a row failed" in body["detail"]


def test_a_server_fault_is_a_500_with_a_request_id_and_no_exception_text(jpeg_bytes: bytes) -> None:
    with LocalServer({**BASE, "workers": 1}, app_spec=SPEC, extra_env={FAULT_ENV: "memory"}) as server:
        response = _post(server.url, jpeg_bytes)
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["code"] == "internal_error" and len(error["request_id"]) >= 16
        assert "/secret/path" not in response.text and "MemoryError" not in response.text
        assert error["request_id"] in server.log()  # the log line an operator looks up
        assert total(server.url, "visionserve_rejections_total", reason="internal_error") == 1
        assert _probe(server.url, "/healthz")[0] == 200  # one fault is not a dead worker
