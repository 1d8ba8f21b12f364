"""What /proc says: CPU ticks of processes and threads and of the whole machine, proportional set size, load."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
IDLE_CORES = 0.3  # --wait-idle: the machine counts as idle below this many busy cores


def _stat_fields(path: Path) -> list[str] | None:
    """Fields of a /proc stat file after the command name (field 3 onwards), or None if the process is gone."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _ticks(fields: list[str] | None) -> int:
    return 0 if fields is None else int(fields[11]) + int(fields[12])  # utime + stime


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry / "stat")
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def process_ticks(pids: Sequence[int]) -> int:
    """user + system CPU ticks of these processes (all their threads, exited ones included)."""
    return sum(_ticks(_stat_fields(Path(f"/proc/{pid}/stat"))) for pid in pids)


def thread_ticks(pid: int) -> dict[int, int]:
    """user + system CPU ticks of each live thread of a process, by thread id."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return {}
    return {int(task.name): _ticks(_stat_fields(task / "stat")) for task in tasks}


def busy_ticks() -> int:
    """Machine-wide busy CPU ticks (everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4]


def _rollup_mb(pids: Sequence[int], key: str) -> float:
    """One line of smaps_rollup (e.g. "Pss:"), summed over these processes, in MB; processes gone count 0."""
    total_kb = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(key))
    return round(total_kb / 1024.0, 1)


def pss_mb(pids: Sequence[int]) -> float:
    """Proportional set size of these processes together, in MB (shared pages counted once overall)."""
    return _rollup_mb(pids, "Pss:")


def rss_mb(pids: Sequence[int]) -> float:
    """Resident set size of these processes, summed, in MB (shared pages counted once per process)."""
    return _rollup_mb(pids, "Rss:")


def anonymous_mb(pids: Sequence[int]) -> float:
    """Resident anonymous memory (heap, arenas; where a leak grows) of these processes, summed, in MB."""
    return _rollup_mb(pids, "Anonymous:")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class CpuWindow:
    """CPU used over a time window: by the server, by this process (the clients), by everything else."""

    server_pids: Sequence[int] = ()
    start: float = field(default_factory=time.monotonic)
    busy0: int = field(default_factory=busy_ticks)
    server0: int = 0
    own0: float = field(default_factory=lambda: sum(os.times()[:2]))

    def __post_init__(self) -> None:
        self.server0 = process_ticks(self.server_pids)

    def close(self, started: Sequence[int] = ()) -> dict[str, float]:
        """Average cores busy per category since the window opened; `started`: server processes born inside it."""
        seconds = max(1e-9, time.monotonic() - self.start)
        busy = (busy_ticks() - self.busy0) / CLK_TCK / seconds
        server_ticks = process_ticks(self.server_pids) - self.server0 + process_ticks(started)
        server = server_ticks / CLK_TCK / seconds
        own = (sum(os.times()[:2]) - self.own0) / seconds
        return {
            "busy_cores": round(busy, 2),
            "server_cores": round(server, 2),
            "client_cores": round(own, 2),
            "other_cores": round(max(0.0, busy - server - own), 2),
        }


class PeakPss:
    """Samples the PSS of some processes on a thread while in the `with` block; keeps the peak (MB)."""

    def __init__(self, pids: Sequence[int], interval_s: float = 1.0) -> None:
        self.pids = pids
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pss", daemon=True)

    def _sample(self) -> None:
        self.peak_mb = max(self.peak_mb, pss_mb(self.pids))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakPss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def wait_for_idle(max_wait_s: float, threshold_cores: float = IDLE_CORES) -> None:
    """Wait (bounded) until the machine is nearly idle over a 2 s sample, so a phase starts on a quiet machine."""
    started = time.monotonic()
    busy = 0.0
    while time.monotonic() - started < max_wait_s:
        before = busy_ticks()
        time.sleep(2.0)
        busy = (busy_ticks() - before) / CLK_TCK / 2.0
        if busy <= threshold_cores:
            break
    waited = time.monotonic() - started
    if waited > 2.5:
        state = "idle" if busy <= threshold_cores else "still busy"
        print(f"  waited {waited:.0f}s for an idle machine: {state} ({busy:.2f} cores busy)", flush=True)
