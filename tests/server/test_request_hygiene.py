"""Request ids, the access log, strict parameters and hostile JSON bodies, against a real gunicorn on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import RANDOM_SETTINGS
from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo

pytestmark = pytest.mark.service

JPEG = {"Content-Type": "image/jpeg"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def one_worker() -> Iterator[LocalServer]:
    """One worker, so /healthz and the hostile body share the same event loop."""
    with LocalServer({**RANDOM_SETTINGS, "workers": 1, "cifar_head": "none"}) as running:
        yield running


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(photo("chelsea", (64, 48)))


def _access_lines(server: LocalServer, request_id: str, expected: int = 1, timeout: float = 10.0) -> list[dict]:
    """The server log's access lines for one request id: each line must be pure JSON."""
    deadline = time.monotonic() + timeout
    while True:
        found = [json.loads(line) for line in server.log().splitlines() if line.startswith("{") and request_id in line]
        found = [entry for entry in found if entry["request_id"] == request_id]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_the_request_id_is_echoed_generated_or_replaced(one_worker: LocalServer, jpeg: bytes) -> None:
    url = one_worker.url
    echoed = requests.post(f"{url}/v1/predict", data=jpeg, headers={**JPEG, "X-Request-ID": "client-42"}, timeout=30)
    assert echoed.status_code == 200 and echoed.headers["X-Request-ID"] == "client-42"
    generated = requests.get(f"{url}/v1/models", timeout=10).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    for insane in ("a b", "x" * 129, "<script>", "id\x7f"):
        replaced = requests.get(f"{url}/healthz", headers={"X-Request-ID": insane}, timeout=10)
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"]), insane
    refused = requests.post(f"{url}/v1/predict", data=b"", headers={**JPEG, "X-Request-ID": "client-43"}, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["request_id"] == "client-43"
    assert refused.headers["X-Request-ID"] == "client-43"


def test_one_json_access_line_per_request_in_the_server_log(one_worker: LocalServer, jpeg: bytes) -> None:
    url = one_worker.url
    ok = requests.post(f"{url}/v1/predict?top_k=3", data=jpeg, headers={**JPEG, "X-Request-ID": "log-ok"}, timeout=30)
    bad = requests.post(f"{url}/v1/predict?top_k=0", data=jpeg, headers={**JPEG, "X-Request-ID": "log-bad"}, timeout=30)
    lost = requests.get(f"{url}/secret/path/1", headers={"X-Request-ID": "log-lost"}, timeout=10)
    assert (ok.status_code, bad.status_code, lost.status_code) == (200, 400, 404)
    [good] = _access_lines(one_worker, "log-ok")
    assert set(good) >= {"time", "request_id", "method", "route", "status", "images", "latency_ms", "reason", "client"}
    assert (good["method"], good["route"], good["status"], good["images"], good["reason"]) == (
        "POST",
        "/v1/predict",
        200,
        1,
        None,
    )
    assert good["latency_ms"] > 0 and good["client"].startswith("127.0.0.1:")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", good["time"])
    [refused] = _access_lines(one_worker, "log-bad")
    assert (refused["status"], refused["reason"], refused["code"]) == (400, "invalid_request", "invalid_top_k")
    [unmatched] = _access_lines(one_worker, "log-lost")
    assert unmatched["route"] == "<unmatched>" and "secret" not in json.dumps(unmatched)


def test_a_parameter_given_twice_is_a_400_naming_it(one_worker: LocalServer, jpeg: bytes) -> None:
    url = f"{one_worker.url}/v1/predict"
    b64 = base64.b64encode(jpeg).decode()
    instance = json.dumps({"b64": b64})
    attempts = {
        "query": lambda: requests.post(f"{url}?top_k=1&top_k=5", data=jpeg, headers=JPEG, timeout=30),
        "form": lambda: requests.post(
            url, files={"image": ("cat.jpg", jpeg, "image/jpeg")}, data={"top_k": ["2", "2"]}, timeout=30
        ),
        "json": lambda: requests.post(
            url, data=f'{{"instances": [{instance}], "top_k": 2, "top_k": 2}}', headers=JSON, timeout=30
        ),
        "query and body": lambda: requests.post(
            f"{url}?top_k=2", data=json.dumps({"instances": [{"b64": b64}], "top_k": 2}), headers=JSON, timeout=30
        ),
    }
    for where, attempt in attempts.items():
        response = attempt()
        assert response.status_code == 400, (where, response.text)
        error = response.json()["error"]
        assert error["code"] == "repeated_parameter" and "'top_k'" in error["message"], where
    once = requests.post(f"{url}?top_k=2", data=json.dumps({"instances": [{"b64": b64}]}), headers=JSON, timeout=30)
    assert once.status_code == 200 and len(once.json()["predictions"][0]["heads"]["imagenet"]) == 2


def test_a_5000_digit_top_k_is_a_400(one_worker: LocalServer, jpeg: bytes) -> None:
    url = f"{one_worker.url}/v1/predict"
    b64, digits = base64.b64encode(jpeg).decode(), "9" * 5000
    body = f'{{"instances": [{{"b64": "{b64}"}}], "top_k": {digits}}}'
    in_json = requests.post(url, data=body, headers=JSON, timeout=30)
    assert in_json.status_code == 400, in_json.text
    assert in_json.json()["error"]["code"] == "malformed_json" and "top_k" in in_json.json()["error"]["message"]
    in_query = requests.post(f"{url}?top_k={digits}", data=jpeg, headers=JPEG, timeout=30)
    assert in_query.status_code == 400 and in_query.json()["error"]["code"] == "invalid_top_k"
    assert requests.get(f"{one_worker.url}/readyz", timeout=10).status_code == 200


def _old_parse_seconds(body: bytes) -> float:
    """What parsing this body cost before: json.loads, then every instance's base64 decoded (then counted)."""
    start = time.perf_counter()
    for instance in json.loads(body)["instances"]:
        base64.b64decode(instance["b64"], validate=True)
    return time.perf_counter() - start


def test_a_10_mib_json_body_of_tiny_instances_is_413_while_healthz_answers(one_worker: LocalServer) -> None:
    """Three clients send a near-10 MiB body of 650,000 tiny instances, three times each; /healthz, on the same
    worker, must keep answering well within the time the old parse held the event loop for one such body."""
    body = b'{"instances": [' + b",".join([b'{"b64": "AA=="}'] * 650_000) + b"]}"
    assert 9 * 2**20 < len(body) <= 10 * 2**20
    reference = _old_parse_seconds(body)
    bound = max(0.5, reference / 2)  # the old code stalled /healthz for 20 s here (9 bodies on 2 cores)
    latencies: list[float] = []
    done = threading.Event()

    def poll_healthz() -> None:
        while not done.is_set() and len(latencies) < 2000:
            start = time.perf_counter()
            assert requests.get(f"{one_worker.url}/healthz", timeout=30).status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.02)

    def attack(_: int) -> list[tuple[int, str]]:
        answers = []
        with requests.Session() as session:
            for _ in range(3):
                response = session.post(f"{one_worker.url}/v1/predict", data=body, headers=JSON, timeout=60)
                answers.append((response.status_code, response.json()["error"]["code"]))
        return answers

    poller = threading.Thread(target=poll_healthz)
    poller.start()
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = [answer for answers in pool.map(attack, range(3)) for answer in answers]
    finally:
        done.set()
        poller.join(timeout=60)
    assert answers == [(413, "too_many_images")] * 9
    assert len(latencies) >= 3, "the poller never got an answer in"
    assert max(latencies) < bound, f"/healthz took {max(latencies):.3f}s; the old parse took {reference:.3f}s"
