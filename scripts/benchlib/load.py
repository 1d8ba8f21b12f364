"""Closed-loop HTTP load on 127.0.0.1: sample photos, client threads that honour Retry-After, per-level results."""

from __future__ import annotations

import http.client
import io
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket")  # colour photos bundled in scikit-image's wheel
PHOTO_SIZE = (500, 375)
JPEG_QUALITY = 90
REQUEST_TIMEOUT_S = 60.0
ERROR_PAUSE_S = 0.1


def sample_photos(names: Sequence[str] = PHOTO_NAMES, size: tuple[int, int] = PHOTO_SIZE) -> list[bytes]:
    """Bundled scikit-image photos, resized to `size` and re-encoded as JPEG."""
    from skimage import data

    photos = []
    for name in names:
        array = getattr(data, name)()
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        image = Image.fromarray(array[..., :3]).convert("RGB").resize(size, Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        photos.append(buffer.getvalue())
    return photos


@dataclass(frozen=True)
class Sample:
    """One answered request."""

    status: int
    latency_s: float
    finished: float


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if len(values) else None


@dataclass
class LevelResult:
    """What the clients saw during one measured window, and what the window's probe found on the server."""

    concurrency: int
    duration_s: float
    ok: int = 0
    shed: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)

    def record(self, sample: Sample | str, stop_at: float) -> None:
        """Count one outcome; answers that arrive after the window closed do not count."""
        if isinstance(sample, str):
            self.errors += 1
            self.error_examples.append(sample)
        elif sample.finished > stop_at:
            return
        elif sample.status == 200:
            self.ok += 1
            self.latencies_ms.append(sample.latency_s * 1000)
        elif sample.status == 503:
            self.shed += 1
        else:
            self.errors += 1
            self.error_examples.append(f"HTTP {sample.status}")

    def summary(self) -> dict[str, Any]:
        """Throughput of accepted images, latency percentiles of accepted requests, shed and errors."""
        answered = self.ok + self.shed + self.errors
        return {
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 2),
            "ok": self.ok,
            "shed": self.shed,
            "errors": self.errors,
            "shed_pct": round(100.0 * self.shed / answered, 2) if answered else 0.0,
            "throughput_img_s": round(self.ok / self.duration_s, 2),
            "p50_ms": percentile(self.latencies_ms, 50),
            "p95_ms": percentile(self.latencies_ms, 95),
            "p99_ms": percentile(self.latencies_ms, 99),
            "error_examples": self.error_examples[:5],
        }


class Probe(Protocol):
    """Measures the server over the window the clients measure: opened at its start, closed at its end."""

    def open(self) -> None: ...

    def close(self) -> dict[str, Any]: ...


class LoadClient:
    """Closed-loop clients against one server: each thread sends one image, waits for the answer, repeats."""

    def __init__(self, url: str, photos: Sequence[bytes], honor_retry_after: bool) -> None:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname == "127.0.0.1", "the benchmark only sends traffic to 127.0.0.1"
        self.host, self.port = parts.hostname, parts.port
        self.photos = photos
        self.honor_retry_after = honor_retry_after

    def _client(
        self, index: int, start_at: float, stop_at: float, take: Callable[[], bool] = lambda: True
    ) -> list[Sample | str]:
        """One client on one keep-alive connection; keeps what finished from `start_at` on; stops at `stop_at`, or
        when `take` (asked before each request) says no more requests are to be sent."""
        samples: list[Sample | str] = []
        connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        headers = {"Content-Type": "image/jpeg"}
        n = index
        try:
            while time.monotonic() < stop_at and take():
                photo = self.photos[n % len(self.photos)]
                n += 1
                started = time.perf_counter()
                try:
                    connection.request("POST", "/v1/predict", body=photo, headers=headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    samples.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    connection.close()  # the next request opens a new connection
                    time.sleep(ERROR_PAUSE_S)
                    continue
                latency = time.perf_counter() - started
                finished = time.monotonic()
                if finished >= start_at:
                    samples.append(Sample(response.status, latency, finished))
                if response.status == 503 and self.honor_retry_after:
                    pause = float(response.getheader("Retry-After") or 1)
                    time.sleep(max(0.0, min(pause, stop_at - time.monotonic())))
        finally:
            connection.close()
        return samples

    def run(self, concurrency: int, duration: float, warmup: float, probe: Probe) -> dict[str, Any]:
        """Warm up, then measure `duration` seconds; requests in flight at the end finish but do not count."""
        now = time.monotonic()
        start_at, stop_at = now + warmup, now + warmup + duration
        with ThreadPoolExecutor(concurrency, thread_name_prefix="client") as pool:
            futures = [pool.submit(self._client, i, start_at, stop_at) for i in range(concurrency)]
            time.sleep(max(0.0, start_at - time.monotonic()))
            probe.open()
            time.sleep(max(0.0, stop_at - time.monotonic()))
            server = probe.close()
            results = [f.result() for f in futures]
        level = LevelResult(concurrency, duration)
        for sample in (s for samples in results for s in samples):
            level.record(sample, stop_at)
        return {**level.summary(), **server}

    def warm_up(self, concurrency: int, seconds: float) -> None:
        """Load the server for `seconds` and keep nothing."""
        stop_at = time.monotonic() + seconds
        with ThreadPoolExecutor(concurrency, thread_name_prefix="client") as pool:
            for future in [pool.submit(self._client, i, stop_at, stop_at) for i in range(concurrency)]:
                future.result()

    def run_requests(self, concurrency: int, requests: int, time_limit_s: float) -> dict[str, Any]:
        """Send exactly `requests` requests (every answer, 503 or error included, counts as one) from `concurrency`
        clients, or fewer when `time_limit_s` runs out; the summary adds how many were sent."""
        lock, sent = threading.Lock(), [0]

        def take() -> bool:
            with lock:
                sent[0] += 1
                return sent[0] <= requests

        started = time.monotonic()
        stop_at = started + time_limit_s
        with ThreadPoolExecutor(concurrency, thread_name_prefix="client") as pool:
            futures = [pool.submit(self._client, i, started, stop_at, take) for i in range(concurrency)]
            results = [f.result() for f in futures]
        level = LevelResult(concurrency, time.monotonic() - started)
        for sample in (s for samples in results for s in samples):
            level.record(sample, stop_at)
        return {**level.summary(), "requests": min(sent[0], requests)}
