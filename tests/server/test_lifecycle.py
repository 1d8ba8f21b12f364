"""Overload, SIGTERM and weights at start, each against its own real gunicorn."""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.models.weights import sha256_of
from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo
from tests.server.metrics_text import total

pytestmark = pytest.mark.service


def _post(url: str, body: bytes, **kwargs: object) -> requests.Response:
    return requests.post(f"{url}/v1/predict", data=body, headers={"Content-Type": "image/jpeg"}, timeout=60, **kwargs)


def test_a_full_queue_answers_503_with_retry_after_before_any_work(jpeg_bytes: bytes) -> None:
    settings = {
        "weights": "random",
        "workers": 1,
        "torch_threads": 1,
        "max_queue": 2,
        "max_images": 1,
        "max_queue_ms": 0,
        "max_batch_size": 1,
        "max_wait_ms": 0,
        "retry_after_s": 2,
    }
    with LocalServer(settings) as server, ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: _post(server.url, jpeg_bytes), range(32)))
        shed = [r for r in responses if r.status_code == 503]
        assert shed, [r.status_code for r in responses]
        assert {r.status_code for r in responses} <= {200, 503}
        assert all(int(r.headers["Retry-After"]) >= 2 for r in shed)  # the least, spread upwards by jitter
        assert shed[0].json()["error"]["code"] == "queue_full"
        decoded = total(server.url, "visionserve_preprocess_seconds_count")
        assert decoded == len(responses) - len(shed)  # refused before any decoding: shed requests cost no work
        assert total(server.url, "visionserve_rejections_total", reason="queue_full") == len(shed)
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200


def test_sigterm_fails_readiness_finishes_in_flight_requests_then_exits() -> None:
    settings = {
        "weights": "random",
        "workers": 2,
        "torch_threads": 1,
        "max_batch_size": 1,
        "max_queue_ms": 0,  # every request is admitted (by count): the drain, not admission, is under test
        "drain_seconds": 3,
        "graceful_timeout": 30,
    }
    images = [("image", (f"{i}.jpg", encode(photo(size=(300, 200))), "image/jpeg")) for i in range(4)]
    server = LocalServer(settings).start().wait_ready()
    try:
        results: list[int] = []

        def client() -> None:
            results.append(requests.post(f"{server.url}/v1/predict", files=images, timeout=60).status_code)

        clients = [threading.Thread(target=client) for _ in range(6)]
        for thread in clients:
            thread.start()
        time.sleep(0.5)  # the requests are accepted and being answered
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the signal has landed: what arrives now arrives during the drain
        late = threading.Thread(target=client)  # answered after the queue ahead of it: may outlast the drain
        late.start()
        readiness = []
        deadline = time.monotonic() + 20  # polls until the listener closes after the drain
        while time.monotonic() < deadline:
            try:
                readiness.append(requests.get(f"{server.url}/readyz", timeout=2).status_code)
            except requests.ConnectionError:
                break
            time.sleep(0.1)
        for thread in [*clients, late]:
            thread.join(timeout=60)
        state = f"results={results} readiness={readiness}\n{server.log()[-3000:]}"
        # all 7 answered 200, the last one sent during the drain: readiness fails, traffic routed here is served
        assert results == [200] * 7, state
        # each worker turns 503 as its SIGTERM lands, and keeps serving 503 until its listener closes
        assert readiness[-3:] == [503, 503, 503], state
        assert server.wait_exit(timeout=60) == 0, state
    finally:
        server.stop()


def test_a_weights_file_made_here_is_served_and_described(weights_file: Path, jpeg_bytes: bytes) -> None:
    digest = sha256_of(weights_file)
    settings = {"weights": str(weights_file), "weights_sha256": digest, "workers": 1, "torch_threads": 2}
    with LocalServer(settings) as server:
        models = requests.get(f"{server.url}/v1/models", timeout=10).json()
        imagenet = models["heads"]["imagenet"]["weights"]
        assert imagenet["kind"] == "file" and imagenet["sha256"] == digest
        assert imagenet["source"] == f"file {weights_file.name}"  # by name: answers carry no file-system path
        predicted = _post(server.url, jpeg_bytes)
        for answer in (models, predicted.json()):
            assert str(weights_file.parent) not in json.dumps(answer)
        assert predicted.json()["weights"]["imagenet"] == f"file {weights_file.name}"
        assert str(weights_file) in server.log()  # the operator's log keeps it
        assert models["model"]["random_weights"] is False
        assert models["heads"]["cifar10"]["available"] is False
        assert _post(server.url, jpeg_bytes).status_code == 200
        unavailable = requests.post(
            f"{server.url}/v1/predict?heads=cifar10",
            data=jpeg_bytes,
            headers={"Content-Type": "image/jpeg"},
            timeout=30,
        )
        assert unavailable.status_code == 400
        assert unavailable.json()["error"]["code"] == "head_unavailable"
        message = unavailable.json()["error"]["message"]  # names the setting that enables the head
        assert "VISIONSERVE_CIFAR_HEAD=/path/to/head.pt" in message and "config.cifar_head" in message


def test_a_wrong_sha256_refuses_to_start_with_a_clear_message(weights_file: Path) -> None:
    server = LocalServer({"weights": str(weights_file), "weights_sha256": "ab" * 32, "workers": 1}).start()
    try:
        assert server.wait_exit(timeout=120) != 0
    finally:
        server.stop()
    log = server.log()
    assert "sha256 mismatch" in log and "ab" * 32 in log and sha256_of(weights_file) in log
