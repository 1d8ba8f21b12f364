"""Connection hygiene on a real gunicorn, with raw sockets: clients that misbehave in ways HTTP libraries cannot."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.harness.guarded_server import Answer
from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo
from tests.server.metrics_text import total

pytestmark = pytest.mark.service

BASE = {"weights": "random", "runtime": "torch", "cifar_head": "none", "workers": 1, "torch_threads": 1}
# Short limits, so each misbehaviour is answered within seconds.
SHORT = {
    "header_timeout_s": 2,
    "body_timeout_s": 2,
    "keepalive_timeout_s": 6,
    "max_connections": 8,
    "max_header_bytes": 4096,
}
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
MODELS = b"GET /v1/models HTTP/1.1\r\nHost: test\r\n\r\n"
TEN_MIB_UPLOAD = (
    b"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: 10485760\r\n\r\n"
)
JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def short() -> Iterator[LocalServer]:
    with LocalServer({**BASE, **SHORT}) as running:
        yield running


@pytest.fixture(scope="module")
def roomy() -> Iterator[LocalServer]:
    """The default connection cap, and timeouts long enough to hold connections through a test."""
    with LocalServer({**BASE, "header_timeout_s": 120, "body_timeout_s": 120}) as running:
        yield running


class Raw:
    """One raw TCP connection to the server, reading HTTP/1.1 answers by Content-Length."""

    def __init__(self, server: LocalServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server before a whole answer")
        self.buffer += chunk

    def answer(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(int(lines[0].split()[1]), headers, body)

    def answered(self, within: float) -> bool:
        """Whether bytes (or the close) arrive within `within` seconds."""
        return bool(self.buffer) or bool(select.select([self.sock], [], [], within)[0])

    def closed_by_server(self, within: float = 60.0) -> bool:
        """True when the server closes (EOF or reset) within `within` seconds and sends nothing more."""
        self.sock.settimeout(within)
        try:
            return self.sock.recv(1) == b"" and not self.buffer
        except ConnectionResetError:
            return not self.buffer
        except TimeoutError:
            return False

    def still_open(self) -> bool:
        """No EOF and nothing to read: the server holds the connection."""
        self.sock.setblocking(False)
        try:
            self.sock.recv(1)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            self.sock.setblocking(True)
        return False

    def close(self) -> None:
        self.sock.close()


def rejections(server: LocalServer, reason: str) -> float:
    return total(server.url, "visionserve_rejections_total", reason=reason)


def error_of(answer: Answer) -> dict:
    assert answer.headers["content-type"] == "application/json"
    return json.loads(answer.body)["error"]


def test_a_header_sent_slowly_gets_408_and_the_connection_closes(short: LocalServer) -> None:
    before = rejections(short, "request_timeout")
    raw = Raw(short)
    raw.send(b"POST /v1/predict HTTP/1.1\r\n")
    started = time.monotonic()
    for line in range(200):  # a header line every 0.2 s, for at most 40 s: trickling does not buy time
        if raw.answered(within=0.2):
            break
        try:
            raw.send(b"X-Slow-%d: 1\r\n" % line)
        except OSError:  # closed under our feet: its answer is still in our receive buffer
            break
    answer = raw.answer()
    assert answer.status == 408 and answer.headers["connection"] == "close"
    assert error_of(answer)["code"] == "request_timeout"
    assert raw.closed_by_server()
    assert time.monotonic() - started < 30  # it did not wait for the client to finish
    raw.close()
    assert rejections(short, "request_timeout") == before + 1


def test_a_body_that_stops_before_its_content_length_gets_408_and_the_worker_serves_on(
    short: LocalServer, jpeg_bytes: bytes
) -> None:
    before = rejections(short, "request_timeout")
    raw = Raw(short)
    raw.send(TEN_MIB_UPLOAD + b"\xff" * 1024 * 1024)  # 1 MiB of the 10 MiB announced, then nothing
    answer = raw.answer()
    assert answer.status == 408 and error_of(answer)["accepted"] == {"body_timeout_s": 2}
    assert raw.closed_by_server()
    raw.close()
    assert rejections(short, "request_timeout") == before + 1
    served = requests.post(f"{short.url}/v1/predict?top_k=1", data=jpeg_bytes, headers=JPEG, timeout=60)
    assert served.status_code == 200, served.text


def test_an_upload_that_keeps_flowing_is_not_cut_by_the_body_timeout(short: LocalServer) -> None:
    image, chunk = encode(photo("astronaut", (2400, 2400)), quality=95), 64 * 1024
    assert len(image) > 8 * chunk
    raw = Raw(short)
    raw.send(b"POST /v1/predict?top_k=1 HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\n")
    raw.send(b"Content-Length: %d\r\n\r\n" % len(image))
    started = time.monotonic()
    for offset in range(0, len(image), chunk):  # a chunk every 0.3 s: longer than body_timeout_s in all
        raw.send(image[offset : offset + chunk])
        time.sleep(0.3)
    assert time.monotonic() - started > SHORT["body_timeout_s"]
    answer = raw.answer()
    assert answer.status == 200, answer.body
    assert len(json.loads(answer.body)["predictions"]) == 1
    raw.close()


def test_keep_alive_is_reused_then_an_idle_connection_is_closed_after_its_timeout(short: LocalServer) -> None:
    raw = Raw(short)
    raw.send(HEALTHZ)
    assert raw.answer().status == 200
    time.sleep(1)  # idle, well within keepalive_timeout_s
    raw.send(HEALTHZ)
    assert raw.answer().status == 200
    idle_since = time.monotonic()
    assert raw.closed_by_server(within=60)  # closed, without an answer: nothing was asked
    assert time.monotonic() - idle_since > SHORT["keepalive_timeout_s"] - 1  # and not before its time
    raw.close()


def test_pipelined_requests_are_answered_in_order(roomy: LocalServer, jpeg_bytes: bytes) -> None:
    raw = Raw(roomy)
    predict = b"POST /v1/predict?top_k=1 HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\n"
    predict += b"Content-Length: %d\r\n\r\n" % len(jpeg_bytes) + jpeg_bytes
    raw.send(HEALTHZ + predict + b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n")
    answers = [raw.answer() for _ in range(3)]
    assert [answer.status for answer in answers] == [200, 200, 200]
    assert json.loads(answers[0].body) == {"status": "alive"}
    assert "predictions" in json.loads(answers[1].body)
    assert json.loads(answers[2].body) == {"status": "ready"}
    raw.close()


def test_the_connection_over_the_cap_gets_503_json_probes_pass_and_clients_are_served_once_others_close(
    short: LocalServer,
) -> None:
    before = rejections(short, "too_many_connections")
    time.sleep(0.5)  # let the server see that connection close, so that exactly the held ones count
    held = [Raw(short) for _ in range(SHORT["max_connections"])]
    try:
        for raw in held:  # each one served, then held open and idle
            raw.send(HEALTHZ)
            assert raw.answer().status == 200
        over = Raw(short)
        over.send(MODELS)
        answer = over.answer()
        assert answer.status == 503 and answer.headers["retry-after"].isdigit()
        assert error_of(answer)["code"] == "too_many_connections"
        assert error_of(answer)["accepted"] == {"max_connections": SHORT["max_connections"]}
        assert over.closed_by_server()
        over.close()
        probe = Raw(short)  # probes are exempt: the kubelet must not restart a worker for a flood
        probe.send(HEALTHZ)
        assert probe.answer().status == 200 and probe.closed_by_server()
        probe.close()
        held.pop().close()
        for _ in range(50):  # the server sees the close at once; allow for a slow machine
            again = Raw(short)
            again.send(MODELS)
            status = again.answer().status
            again.close()
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200
    finally:
        for raw in held:
            raw.close()
    time.sleep(0.5)  # the held connections are gone: /metrics has room again
    assert rejections(short, "too_many_connections") >= before + 1


def test_a_header_over_max_header_bytes_gets_431_json(short: LocalServer) -> None:
    before = rejections(short, "headers_too_large")
    raw = Raw(short)
    raw.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\nCookie: " + b"c" * 8192 + b"\r\n\r\n")
    answer = raw.answer()
    assert answer.status == 431 and error_of(answer)["accepted"] == {"max_header_bytes": 4096}
    assert raw.closed_by_server()
    raw.close()
    assert rejections(short, "headers_too_large") == before + 1


def test_with_50_idle_and_stalled_connections_held_predictions_and_probes_still_answer(
    roomy: LocalServer, jpeg_bytes: bytes
) -> None:
    idle = [Raw(roomy) for _ in range(25)]
    stalled = [Raw(roomy) for _ in range(25)]
    try:
        for raw in stalled:  # 1 MiB each of a 10 MiB upload, then nothing
            raw.send(TEN_MIB_UPLOAD + b"\xff" * 1024 * 1024)
        predicted = requests.post(f"{roomy.url}/v1/predict?top_k=1", data=jpeg_bytes, headers=JPEG, timeout=60)
        assert predicted.status_code == 200, predicted.text
        assert requests.get(f"{roomy.url}/healthz", timeout=10).status_code == 200
        assert total(roomy.url, "visionserve_connections_open") >= 50
        assert all(raw.still_open() for raw in idle + stalled)
    finally:
        for raw in idle + stalled:
            raw.close()
