"""Inference threads: the cgroup's CPU limit when set, else the CPU request the chart passes, else the CPUs seen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.settings import load_settings
from app.threads import cpu_quota, decode_threads, threads_for, threads_per_worker


def _cpu_max(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpu.max"
    path.write_text(text)
    return path


def test_a_cgroup_limit_wins_over_the_request(tmp_path: Path) -> None:
    assert cpu_quota(500, _cpu_max(tmp_path, "300000 100000\n")) == 3.0


@pytest.mark.parametrize(("millicores", "cores"), [(2000, 2.0), (1500, 1.5), (250, 0.25)])
def test_without_a_limit_the_request_is_the_quota(tmp_path: Path, millicores: int, cores: float) -> None:
    assert cpu_quota(millicores, _cpu_max(tmp_path, "max 100000\n")) == cores


def test_without_limit_or_request_every_usable_cpu_counts(tmp_path: Path) -> None:
    assert cpu_quota(0, _cpu_max(tmp_path, "max 100000\n")) == len(os.sched_getaffinity(0))
    assert cpu_quota(0, tmp_path / "absent") == len(os.sched_getaffinity(0))


def test_the_request_setting_sets_the_threads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a pod without a CPU limit gets: VISIONSERVE_CPU_REQUEST_MILLICORES from the downward API."""
    monkeypatch.setattr("app.threads.CPU_MAX", _cpu_max(tmp_path, "max 100000\n"))
    settings = load_settings(environ={"VISIONSERVE_CPU_REQUEST_MILLICORES": "4000", "VISIONSERVE_WORKERS": "2"})
    assert threads_per_worker(settings) == threads_for(4.0, 2) == 2
    assert decode_threads(settings) == 1
    assert threads_per_worker(load_settings(environ={"VISIONSERVE_CPU_REQUEST_MILLICORES": "8000"})) == 8
    assert threads_per_worker(load_settings(environ={"VISIONSERVE_TORCH_THREADS": "3"})) == 3  # set wins
