"""Hostile clients, one function each, against a real server on 127.0.0.1: what the attacker got, and how fast.

Each attack returns an `Outcome`: the status the attacker saw (or how the connection ended), the seconds it took, and
what else was measured (the worker's memory, a probe's latency meanwhile). Every loop is bounded; every socket is
closed; traffic goes only to 127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import socket
import time
from dataclasses import dataclass, field

from PIL import Image

from .raw_http import ANSWER_TIMEOUT_S, Target, post_head, probe_ms, probing, read_answer

BIG_PNG_SIDE = 6260  # 32 of these are the 1.25 gigapixels of the issue


@dataclass
class Outcome:
    """What one attack got."""

    status: str  # "408", "413 pixel_budget_exceeded", "closed without an answer", ...
    seconds: float  # from the attack's start to that answer or close
    notes: dict[str, object] = field(default_factory=dict)


def slow_header(target: Target, byte_every_s: float = 1.0) -> Outcome:
    """A request header sent one byte a second, never finished."""
    started = time.monotonic()
    with target.connect() as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: attack\r\nX-Slow: ")
        sock.settimeout(byte_every_s)
        for _ in range(int(ANSWER_TIMEOUT_S / byte_every_s)):
            try:
                sock.sendall(b"a")
                sock.recv(65536, socket.MSG_PEEK)  # returns once the server answered or closed
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                pass
            break
        status, _ = read_answer(sock, 5)
    return Outcome(status, round(time.monotonic() - started, 2))


def stalled_body(target: Target) -> Outcome:
    """A body that stops after 1 KiB of the 1 MiB its Content-Length announced."""
    started = time.monotonic()
    with target.connect() as sock:
        sock.sendall(post_head("/v1/predict", "image/jpeg", 1 << 20) + b"\xff" * 1024)
        status, _ = read_answer(sock)
    return Outcome(status, round(time.monotonic() - started, 2))


def idle_connections(target: Target, count: int = 200) -> Outcome:
    """`count` connections that never send a byte; a probe's latency meanwhile; when the last was closed."""
    started = time.monotonic()
    socks = [target.connect() for _ in range(count)]
    try:
        during = probe_ms(target.port)
        outcomes = []
        for sock in socks:
            outcomes.append(read_answer(sock)[0])
    finally:
        for sock in socks:
            sock.close()
    kinds = sorted(set(outcomes))
    return Outcome(", ".join(kinds), round(time.monotonic() - started, 2), {"healthz_ms_meanwhile": during})


def stalled_uploads(target: Target, count: int = 20, sent_mib: int = 5) -> Outcome:
    """`count` uploads announcing 10 MiB that stall after `sent_mib` MiB each; the worker's memory at the peak."""
    started = time.monotonic()
    before = target.rss_mb()
    chunk = b"\xff" * (1 << 20)
    socks = [target.connect() for _ in range(count)]
    try:
        for sock in socks:
            sock.sendall(post_head("/v1/predict", "image/jpeg", 10 << 20))
            for _ in range(sent_mib):
                sock.sendall(chunk)
        peak = target.rss_mb()
        during = probe_ms(target.port)
        statuses = sorted({read_answer(sock)[0] for sock in socks})
    finally:
        for sock in socks:
            sock.close()
    time.sleep(1.0)  # let the worker free the partial bodies
    notes = {"rss_before_mb": before, "rss_stalled_mb": peak, "rss_after_mb": target.rss_mb()}
    return Outcome(", ".join(statuses), round(time.monotonic() - started, 2), {**notes, "healthz_ms_meanwhile": during})


def _blank_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _multipart(files: list[bytes], boundary: str = "attackboundary") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _exchange(target: Target, request: bytes) -> Outcome:
    started = time.monotonic()
    with target.connect() as sock:
        sock.sendall(request)
        status, _ = read_answer(sock)
    return Outcome(status, round(time.monotonic() - started, 3))


def gigapixel_pngs(target: Target, count: int) -> Outcome:
    """`count` blank 6260x6260 PNGs in one multipart request (small on the wire, huge decoded)."""
    png = _blank_png(BIG_PNG_SIDE)
    body, content_type = _multipart([png] * count)
    with probing(target.port) as latencies:
        outcome = _exchange(target, post_head("/v1/predict", content_type, len(body)) + body)
    outcome.notes = {
        "body_mb": round(len(body) / 2**20, 2),
        "gigapixels": round(count * BIG_PNG_SIDE**2 / 1e9, 2),
        "healthz_ms_max_meanwhile": max(latencies, default=None),
    }
    return outcome


def json_of_tiny_instances(target: Target, size_bytes: int = (10 << 20) - 4096) -> Outcome:
    """A JSON body just under 10 MiB of tiny instances; a probe's worst latency meanwhile."""
    one = '{"b64":"' + base64.b64encode(b"\x00" * 3).decode() + '"},'
    count = (size_bytes - 20) // len(one)
    body = ('{"instances":[' + one * count)[:-1].encode() + b"]}"
    with probing(target.port, every_s=0.02) as latencies:
        outcome = _exchange(target, post_head("/v1/predict", "application/json", len(body)) + body)
    outcome.notes = {
        "body_mb": round(len(body) / 2**20, 2),
        "instances": count,
        "healthz_ms_max_meanwhile": max(latencies, default=None),
    }
    return outcome


def huge_integer(target: Target, digits: int = 5000) -> Outcome:
    """A JSON top_k of `digits` digits."""
    body = b'{"instances":[{"b64":"AAAA"}],"top_k":' + b"9" * digits + b"}"
    return _exchange(target, post_head("/v1/predict", "application/json", len(body)) + body)


def repeated_parameter(target: Target, image: bytes) -> Outcome:
    """`?top_k=1&top_k=5`: which one did the client mean?"""
    return _exchange(target, post_head("/v1/predict?top_k=1&top_k=5", "image/jpeg", len(image)) + image)


def hung_forward(target: Target, image: bytes) -> Outcome:
    """A request whose forward pass never ends (the server runs a hanging runtime): its answer, then the probes."""
    started = time.monotonic()
    with target.connect() as sock:
        sock.sendall(post_head("/v1/predict", "image/jpeg", len(image)) + image)
        status, _ = read_answer(sock)
    answered = round(time.monotonic() - started, 2)
    notes: dict[str, object] = {}
    for path in ("/readyz", "/healthz"):
        for _ in range(int(ANSWER_TIMEOUT_S * 2)):
            with target.connect() as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: attack\r\n\r\n".encode())
                probe_status, _ = read_answer(sock, 30)
            if not probe_status.startswith("200"):
                notes[f"{path}_failed_after_s"] = round(time.monotonic() - started, 1)
                notes[f"{path}_status"] = probe_status
                break
            time.sleep(0.5)
    return Outcome(status, answered, notes)
