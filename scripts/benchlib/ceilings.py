"""In-process ceilings, no HTTP: decode + preprocess per image, and forward-only img/s at batch 1 and 8 per runtime."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .procfs import CpuWindow

MAX_ITERATIONS = 10_000


def timed_loop(step: Callable[[], None], seconds: float, max_iterations: int = MAX_ITERATIONS) -> list[float]:
    """Run `step` until `seconds` have passed (at least twice, at most `max_iterations`); durations in seconds."""
    durations: list[float] = []
    end = time.monotonic() + seconds
    while (time.monotonic() < end or len(durations) < 2) and len(durations) < max_iterations:
        started = time.perf_counter()
        step()
        durations.append(time.perf_counter() - started)
    return durations


def duration_stats(seconds: Sequence[float]) -> dict[str, float]:
    """median / mean / p90 / max in ms, and the count."""
    ms = np.array(seconds) * 1000.0
    return {
        "median": round(float(np.median(ms)), 2),
        "mean": round(float(ms.mean()), 2),
        "p90": round(float(np.percentile(ms, 90)), 2),
        "max": round(float(ms.max()), 2),
        "n": len(ms),
    }


def measure_runtime(settings: Mapping[str, object], photos: Sequence[bytes], seconds: float) -> dict[str, Any]:
    """The classifier the server would build from `settings`: preprocess + batch 1, then batch 8, forward only.

    Batch 1 runs decode + preprocess and the forward in turn, as a lone request does; rates use the median
    iteration, which stalls caused by other processes do not move.
    """
    import torch

    from app.imaging import preprocess
    from app.models.classifier import Classifier
    from app.settings import load_settings
    from app.threads import threads_per_worker

    chosen = load_settings({f"VISIONSERVE_{key.upper()}": str(value) for key, value in settings.items()})
    torch.set_num_threads(threads_per_worker(chosen))  # as each worker does (the torch runtime, the conversion)
    classifier = Classifier.from_settings(chosen)
    classifier.warm_up(8)
    limit = chosen.max_pixels
    pixels = [preprocess(photo, limit) for photo in photos]
    batch8 = np.stack([pixels[i % len(pixels)] for i in range(8)])
    window = CpuWindow()
    counter = itertools.count()
    preprocess_s: list[float] = []
    forward_s: list[float] = []

    def lone_request() -> None:
        started = time.perf_counter()
        one = preprocess(photos[next(counter) % len(photos)], limit)[np.newaxis]
        middle = time.perf_counter()
        classifier.predict(one)
        forward_s.append(time.perf_counter() - middle)
        preprocess_s.append(middle - started)

    batch1_s = timed_loop(lone_request, seconds / 2)
    batch8_s = timed_loop(lambda: classifier.predict(batch8), seconds / 2)
    info = classifier.runtime.info
    stats = {
        "preprocess_ms": duration_stats(preprocess_s),
        "batch1_forward_ms": duration_stats(forward_s),
        "batch1_total_ms": duration_stats(batch1_s),
        "batch8_forward_ms": duration_stats(batch8_s),
    }
    return {
        "runtime": info.name,
        "precision": info.precision,
        "threads": info.threads,
        "capabilities": list(info.capabilities),
        **stats,
        "batch1_img_s": round(1000.0 / stats["batch1_forward_ms"]["median"], 2),
        "batch8_img_s": round(8000.0 / stats["batch8_forward_ms"]["median"], 2),
        "cpu": window.close(),
    }
