"""scripts/smoke_test.py (what `helm test` runs) against a real server, and against nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.launcher import LocalServer, free_port
from tests.helpers import ROOT

pytestmark = pytest.mark.service


def _smoke(url: str, timeout: str = "30") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "scripts/smoke_test.py", "--url", url, "--timeout", timeout]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_smoke_test_passes_against_a_running_service(server: LocalServer) -> None:
    done = _smoke(server.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["PASS /readyz ready", "PASS /healthz answers"]
    assert "RANDOM weights" in lines[2]
    assert any(line.startswith("PASS predict imagenet") for line in lines)
    assert any(line.startswith("PASS predict cifar10") for line in lines)  # the fixture serves both heads
    assert lines[-1].startswith("PASS /metrics exports")


def test_smoke_test_fails_clearly_when_nothing_answers() -> None:
    done = _smoke(f"http://127.0.0.1:{free_port()}", timeout="3")
    assert done.returncode == 1
    assert "smoke test FAILED" in done.stderr and "not ready after" in done.stderr
