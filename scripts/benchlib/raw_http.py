"""Raw HTTP/1.1 over sockets on 127.0.0.1, for clients that misbehave: read one answer, probe /healthz meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CONNECT_TIMEOUT_S = 10.0
ANSWER_TIMEOUT_S = 120.0  # longer than any server timeout the attacks wait for


@dataclass(frozen=True)
class Target:
    """The server under attack."""

    port: int
    worker_pids: Callable[[], list[int]]

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=CONNECT_TIMEOUT_S)

    def rss_mb(self) -> float:
        """Resident memory of the workers, summed."""
        total_kb = 0
        for pid in self.worker_pids():
            with open(f"/proc/{pid}/status") as status:
                total_kb += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return round(total_kb / 1024, 1)


def read_answer(sock: socket.socket, timeout: float = ANSWER_TIMEOUT_S) -> tuple[str, bytes]:
    """The status line's code (and the error code of a JSON body), or how the connection ended."""
    sock.settimeout(timeout)
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                return ("closed without an answer" if not received else "closed mid-answer"), received
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except TimeoutError:
        return f"no answer in {timeout:.0f} s", received
    except ConnectionResetError:
        return "reset", received
    return _status(head, body), head + b"\r\n\r\n" + body


def _status(head: bytes, body: bytes) -> str:
    code = head.split(b" ", 2)[1].decode()
    try:
        error = json.loads(body)["error"]
        return f"{code} {error['code'] if isinstance(error, dict) else error}"
    except (ValueError, KeyError, TypeError):
        return code


def probe_ms(port: int, path: str = "/healthz") -> float:
    """Latency of one probe on a fresh connection, in ms (a probe is exempt from the connection cap)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: attack\r\n\r\n".encode())
        status, _ = read_answer(sock, 30)
    assert status.startswith("200"), f"{path} answered {status} during the attack"
    return round((time.perf_counter() - started) * 1000, 1)


@contextmanager
def probing(port: int, every_s: float = 0.1, limit: int = 600) -> Iterator[list[float]]:
    """Probe /healthz in a thread while the block runs; the list holds each probe's ms."""
    latencies: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set() and len(latencies) < limit:
            latencies.append(probe_ms(port))
            stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        thread.join(60)


def post_head(path: str, content_type: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: attack\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
