"""The real image, built with podman and run like the chart runs it (tests/container/image_check.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT, require_tool

pytestmark = pytest.mark.slow


def test_the_image_builds_runs_read_only_as_10001_answers_both_heads_and_stops_cleanly() -> None:
    require_tool("podman")
    require_tool("debootstrap")
    done = subprocess.run(
        [sys.executable, "-m", "tests.container.image_check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = done.stdout.splitlines()
    for expected in (
        "PASS /readyz ready",
        "PASS predict imagenet",
        "PASS predict cifar10",
        "PASS /metrics exports",
        "PASS SIGTERM: exit 0",
    ):
        assert any(line.startswith(expected) for line in report), (expected, report)
