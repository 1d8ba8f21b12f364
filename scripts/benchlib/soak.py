"""The soak: a fixed number of requests at a fixed concurrency, and how much the workers' memory grew meanwhile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .load import LoadClient
from .procfs import anonymous_mb, pss_mb, rss_mb

SOAK_CONCURRENCY = 16
SOAK_REQUESTS = 5000
MAX_SOAK_REQUESTS = 100_000
SOAK_TIME_LIMIT_S = 3600.0  # a bound, far above what 5,000 requests take: the soak never runs away


JUDGED = ("rss_mb", "anonymous_mb")  # the worker's own pages: PSS also moves when other processes map its libraries
MEMORY_NOTE = (
    "memory growth judged: the larger growth of the workers' RSS and anonymous RSS (heap, where a leak grows); "
    "PSS is shown too, but it also moves when other processes on the machine map the same libraries"
)


def worker_memory(pids: Sequence[int]) -> dict[str, float]:
    """RSS, PSS and resident anonymous memory of the worker processes, each summed, in MB."""
    return {"rss_mb": rss_mb(pids), "pss_mb": pss_mb(pids), "anonymous_mb": anonymous_mb(pids)}


def memory_growth(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """After minus before, per measure; `mb`, the one the target judges, is the larger growth of those JUDGED."""
    growth = {key: round(after[key] - before[key], 1) for key in before}
    return {**growth, "mb": max(growth[key] for key in JUDGED)}


def run_soak(
    client: LoadClient, worker_pids: Sequence[int], requests: int, *, warmup: float, concurrency: int = SOAK_CONCURRENCY
) -> dict[str, Any]:
    """Warm up for `warmup` seconds, sample the workers' memory, send `requests` requests, sample it again."""
    client.warm_up(concurrency, warmup)
    before = worker_memory(worker_pids)
    soak = client.run_requests(concurrency, requests, SOAK_TIME_LIMIT_S)
    after = worker_memory(worker_pids)
    return {**soak, "memory_before": before, "memory_after": after, "growth": memory_growth(before, after)}


def soak_line(soak: Mapping[str, Any]) -> str:
    """The soak, as printed while the benchmark runs."""
    before, after, growth = soak["memory_before"], soak["memory_after"], soak["growth"]
    return (
        f"  soak, {soak['requests']} requests at c={soak['concurrency']} in {soak['duration_s']} s: "
        f"{soak['ok']} accepted, 503s {soak['shed']}, errors {soak['errors']}, p99 {soak['p99_ms']} ms\n"
        f"         worker memory before -> after: RSS {before['rss_mb']} -> {after['rss_mb']} MB "
        f"({growth['rss_mb']:+g}), anonymous {before['anonymous_mb']} -> {after['anonymous_mb']} MB "
        f"({growth['anonymous_mb']:+g}), PSS {before['pss_mb']} -> {after['pss_mb']} MB ({growth['pss_mb']:+g})\n"
        f"         {MEMORY_NOTE}"
    )
