"""How many runtime threads a worker gets: the CPU quota shared among the workers (the chart computes the same)."""

from __future__ import annotations

import os

from app.settings import Settings


def cpu_quota() -> float:
    """CPUs this process may use: the cgroup v2 quota when one is set, else the affinity mask."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()
        if quota != "max":
            return max(1.0, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return float(len(os.sched_getaffinity(0)))


def threads_for(quota: float, workers: int) -> int:
    """The formula: whole CPUs of the quota per worker, at least one."""
    return max(1, int(quota // workers))


def threads_per_worker(settings: Settings) -> int:
    return settings.torch_threads or threads_for(cpu_quota(), settings.workers)


def decode_threads(settings: Settings) -> int:
    """Decode threads: as set, else a quarter of the runtime's (decoding a photo costs a few ms, a forward tens)."""
    return settings.preprocess_threads or max(1, threads_per_worker(settings) // 4)
