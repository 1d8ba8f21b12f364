"""How many runtime threads a worker gets: the CPU quota shared among the workers (the chart computes the same).

The quota is the cgroup's CPU limit when there is one; without a limit, the container's CPU request (which the chart
passes through the downward API), so a pod that may burst above its request still runs as many threads as it was
promised cores, not one per core of the node.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.settings import Settings

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_quota(request_millicores: int = 0, cpu_max: Path | None = None) -> float:
    """CPUs this process may use: the cgroup v2 quota when one is set, else the CPU request when known, else the
    affinity mask."""
    try:
        quota, period = (cpu_max or CPU_MAX).read_text().split()
        if quota != "max":
            return max(1.0, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    if request_millicores:
        return request_millicores / 1000
    return float(len(os.sched_getaffinity(0)))


def threads_for(quota: float, workers: int) -> int:
    """The formula: whole CPUs of the quota per worker, at least one."""
    return max(1, int(quota // workers))


def threads_per_worker(settings: Settings) -> int:
    return settings.torch_threads or threads_for(cpu_quota(settings.cpu_request_millicores), settings.workers)


def decode_threads(settings: Settings) -> int:
    """Decode threads: as set, else a quarter of the runtime's (decoding a photo costs a few ms, a forward tens)."""
    return settings.preprocess_threads or max(1, threads_per_worker(settings) // 4)
