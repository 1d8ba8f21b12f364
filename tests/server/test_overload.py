"""Overload as a contract, over real HTTP and raw sockets: early 503, pixel budget, deadlines, departed clients."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from PIL import Image

from tests.harness.faulty_app import FAULT_ENV, SPEC
from tests.harness.local_server import LocalServer
from tests.server.metrics_text import total

pytestmark = pytest.mark.service

BATCH_S = 3.0  # every served batch sleeps this long: a request in flight holds the only batch slot
SLOW = {
    "weights": "random",
    "runtime": "torch",
    "workers": 1,
    "torch_threads": 1,
    "max_batch_size": 1,
    "max_wait_ms": 0,
    "max_queue": 2,
    "max_images": 1,
    "max_queue_ms": 0,  # count only: the pace the fault fakes must not decide these tests
    "max_batch_ms": 5000,  # a refused connection pauses at least this long, capped by the next two: 3 s
    "retry_after_s": 3,
    "retry_pause_max_s": 3,
}

POST_HEAD = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LocalServer]:
    with LocalServer(SLOW, app_spec=SPEC, extra_env={FAULT_ENV: f"sleep:{BATCH_S}"}) as running:
        yield running


def _post(url: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(f"{url}/v1/predict", data=body, headers={"Content-Type": "image/jpeg", **headers}, timeout=60)


def _in_background(url: str, body: bytes) -> threading.Thread:
    thread = threading.Thread(target=_post, args=(url, body), daemon=True)
    thread.start()
    return thread


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server never reached the expected state"
        time.sleep(0.05)


def _queued(url: str) -> float:
    return total(url, "visionserve_queue_depth")


def _images_run(url: str) -> float:
    return total(url, "visionserve_batch_size_sum")


def _raw_exchange(port: int, request: bytes, send_body: bytes = b"") -> tuple[bytes, socket.socket]:
    """Send `request` (headers, maybe a body), read one answer's headers and body; the socket stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(request + send_body)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest, sock


def _fill(server: LocalServer, jpeg: bytes) -> list[threading.Thread]:
    """One request running its batch, two queued: the queue (max_queue 2) is full."""
    threads = [_in_background(server.url, jpeg)]
    _wait_for(lambda: total(server.url, "visionserve_requests_in_flight") >= 1 and _queued(server.url) == 0)
    time.sleep(0.3)  # the first is in its batch now
    threads += [_in_background(server.url, jpeg) for _ in range(2)]
    _wait_for(lambda: _queued(server.url) == 2)
    return threads


def test_a_full_queue_refuses_before_reading_the_body(slow_server: LocalServer, jpeg_bytes: bytes) -> None:
    threads = _fill(slow_server, jpeg_bytes)
    decoded = total(slow_server.url, "visionserve_preprocess_seconds_count")
    # 5 MiB announced, not one byte sent: the answer comes anyway, and the connection closes.
    answer, sock = _raw_exchange(slow_server.port, POST_HEAD % 5242880)
    assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    assert b"connection: close" in answer.lower() and b"retry-after: " in answer.lower()
    assert b'"queue_full"' in answer
    sock.settimeout(10)
    assert sock.recv(1024) == b""  # closed by the server
    sock.close()
    # A small body is read and dropped unparsed: the connection stays usable.
    small = b"not even an image"
    answer, sock = _raw_exchange(slow_server.port, POST_HEAD % len(small), small)
    assert answer.startswith(b"HTTP/1.1 503") and b"connection: close" not in answer.lower()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()
    assert total(slow_server.url, "visionserve_preprocess_seconds_count") == decoded  # nothing was decoded
    for thread in threads:
        thread.join(60)


def _queue_full_refusals(url: str) -> float:
    return total(url, "visionserve_rejections_total", reason="queue_full")


def test_a_client_that_retries_at_once_is_not_read_until_room_is_likely(
    slow_server: LocalServer, jpeg_bytes: bytes
) -> None:
    threads = _fill(slow_server, jpeg_bytes)
    small = b"not even an image"
    request = POST_HEAD % len(small) + small
    before = _queue_full_refusals(slow_server.url)
    answer, impatient = _raw_exchange(slow_server.port, request)
    assert answer.startswith(b"HTTP/1.1 503") and b"connection: close" not in answer.lower()
    impatient.sendall(request)  # at once, ignoring Retry-After, on the same connection
    # Another client is answered at once: the pause is the impatient connection's alone.
    answer, other = _raw_exchange(slow_server.port, request)
    assert answer.startswith(b"HTTP/1.1 503")
    other.close()
    # The retry waits unread in its socket: not answered, not even counted; the pause itself is counted.
    assert _queue_full_refusals(slow_server.url) == before + 2
    assert total(slow_server.url, "visionserve_connections_paused") >= 1
    assert total(slow_server.url, "visionserve_retry_pauses_total") >= 1
    impatient.setblocking(False)
    with pytest.raises(BlockingIOError):
        impatient.recv(1024)
    # After the pause it is read and answered like any request: refused again, or (a batch has finished meanwhile)
    # admitted, and then 415 since these bytes are no image.
    impatient.settimeout(30)
    assert impatient.recv(65536).split(b" ")[1] in (b"503", b"415")
    impatient.close()
    _wait_for(lambda: total(slow_server.url, "visionserve_connections_paused") == 0)
    for thread in threads:
        thread.join(60)


def _one_batch_running(server: LocalServer, jpeg: bytes) -> tuple[threading.Thread, float]:
    """A request in its (slow) batch; and how many images had run by then."""
    first = _in_background(server.url, jpeg)
    _wait_for(lambda: total(server.url, "visionserve_requests_in_flight") >= 1)
    time.sleep(0.3)  # past decoding: in its batch
    return first, _images_run(server.url)


def _dropped(url: str, reason: str) -> float:
    return total(url, "visionserve_dropped_images_total", reason=reason, stage="queue")


def test_a_passed_deadline_is_a_504_and_the_image_never_runs(slow_server: LocalServer, jpeg_bytes: bytes) -> None:
    first, ran = _one_batch_running(slow_server, jpeg_bytes)
    dropped = _dropped(slow_server.url, "deadline")
    response = _post(slow_server.url, jpeg_bytes, **{"X-Request-Timeout-Ms": "500"})
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert first.is_alive()  # answered at its deadline, while the batch ahead of it still ran
    first.join(60)
    assert _images_run(slow_server.url) == ran + 1  # only the first request's image ran
    assert _dropped(slow_server.url, "deadline") == dropped + 1
    assert total(slow_server.url, "visionserve_rejections_total", reason="deadline_exceeded") >= 1


def test_a_client_that_leaves_while_queued_has_its_image_dropped(slow_server: LocalServer, jpeg_bytes: bytes) -> None:
    first, ran = _one_batch_running(slow_server, jpeg_bytes)
    dropped = _dropped(slow_server.url, "disconnect")
    sock = socket.create_connection(("127.0.0.1", slow_server.port), timeout=30)
    sock.sendall(POST_HEAD % len(jpeg_bytes) + jpeg_bytes)
    _wait_for(lambda: _queued(slow_server.url) == 1)
    sock.close()  # gone before its batch
    _wait_for(lambda: _queued(slow_server.url) == 0)
    first.join(60)
    assert _images_run(slow_server.url) == ran + 1
    assert _dropped(slow_server.url, "disconnect") == dropped + 1


def _blank_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_gigapixel_request_is_refused_from_its_headers(server: LocalServer, jpeg_bytes: bytes) -> None:
    """The attack of the issue, at today's max_images: 16 blank 6260x6260 PNGs, 627 megapixels in 600 kB."""
    blank = _blank_png(6260, 6260)
    files = [("image", (f"{i}.png", blank, "image/png")) for i in range(16)]
    decoded = total(server.url, "visionserve_preprocess_seconds_count")
    response = requests.post(f"{server.url}/v1/predict", files=files, timeout=60)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "pixel_budget_exceeded" and error["accepted"]["max_request_pixels"] == 100_000_000
    assert total(server.url, "visionserve_preprocess_seconds_count") == decoded  # refused before decoding
    assert _post(server.url, jpeg_bytes).status_code == 200
