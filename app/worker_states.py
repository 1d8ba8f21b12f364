"""Every worker's status in one directory, so /readyz on any worker speaks for the whole pod.

Each worker writes its status to `<dir>/<pid>` when it changes; the gunicorn master removes a dead worker's
file. The directory lives beside the Prometheus multiprocess files, which gunicorn's config sets up.
"""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess directory (gunicorn's config sets it)
SUBDIRECTORY = "worker-status"


def states_dir() -> Path | None:
    """The shared directory under gunicorn (multiprocess metrics on); None in a single process."""
    base = os.environ.get(MULTIPROC_ENV)
    return Path(base) / SUBDIRECTORY if base else None


def publish(status: str, pid: int | None = None) -> None:
    """Record this worker's status (atomically: readers never see half a word)."""
    directory = states_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    pid = pid or os.getpid()
    scratch = directory / f".{pid}.tmp"
    scratch.write_text(status)
    scratch.replace(directory / str(pid))


def forget(pid: int) -> None:
    """The master's cleanup when a worker exits."""
    directory = states_dir()
    if directory is not None:
        (directory / str(pid)).unlink(missing_ok=True)


def clear() -> None:
    directory = states_dir()
    if directory is not None and directory.is_dir():
        for path in directory.iterdir():
            path.unlink(missing_ok=True)


def others_not_ready(expected_workers: int) -> str | None:
    """Why the pod is not ready although this worker is (a sibling not ready, or missing); None when all are."""
    directory = states_dir()
    if directory is None:
        return None
    states: dict[str, str] = {}
    for path in directory.iterdir() if directory.is_dir() else ():
        if path.name.isdigit():
            try:
                states[path.name] = path.read_text().strip()
            except OSError:  # it exited between listing and reading
                continue
    waiting = {pid: state for pid, state in states.items() if state != "ready"}
    if waiting:
        return "worker(s) not ready: " + ", ".join(f"{pid} {state}" for pid, state in sorted(waiting.items()))
    if len(states) < expected_workers:
        return f"{len(states)} of {expected_workers} workers have started"
    return None
