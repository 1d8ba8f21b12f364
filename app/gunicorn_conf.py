"""Gunicorn configuration, derived from the service's settings (the one source of truth)."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

from app import worker_states
from app.gpu_slots import free_slot, visible_device
from app.settings import load_settings
from app.threads import threads_per_worker

_settings = load_settings()

# Set before any worker imports torch or prometheus_client.
_threads = str(threads_per_worker(_settings))
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = _threads
_own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="visionserve-metrics-")

bind = [f"{_settings.host}:{_settings.port}"]
if _settings.metrics_port:  # /metrics only, on its own port (app/frontends/ports.py tells the two apart)
    bind.append(f"{_settings.host}:{_settings.metrics_port}")
workers = _settings.workers
worker_class = "app.worker.VisionserveWorker"
graceful_timeout = math.ceil(_settings.graceful_timeout + _settings.drain_seconds)
timeout = _settings.worker_timeout  # heartbeat; also bounds model load + warm-up in a new worker
keepalive = math.ceil(_settings.keepalive_timeout_s)  # app/connections.py closes idle connections exactly
loglevel = _settings.log_level
errorlog = "-"
accesslog = None
control_socket_disable = True  # gunicorn 24+ control socket: not needed, and a read-only root has no home for it


def on_starting(server: object) -> None:
    """Start from empty metric files: values of a previous run must not leak in."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    worker_states.clear()


def pre_fork(server: object, worker: object) -> None:
    """On cuda with several workers, reserve a GPU slot for the new worker (in the master)."""
    if _settings.device == "cuda" and _settings.workers > 1:
        live = server.WORKERS.values()  # type: ignore[attr-defined]
        worker.gpu_slot = free_slot((getattr(w, "gpu_slot", None) for w in live), _settings.workers)  # type: ignore[attr-defined]


def post_fork(server: object, worker: object) -> None:
    """In the new worker, before torch loads: show it only its own GPU."""
    slot = getattr(worker, "gpu_slot", None)
    if slot is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_device(os.environ.get("CUDA_VISIBLE_DEVICES"), slot)


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges and its status."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
    worker_states.forget(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """Remove the metrics directory when this process made it."""
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
