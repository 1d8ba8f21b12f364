"""`visionserve smoke-test` (what `helm test` runs) against a real server, and against nothing."""

from __future__ import annotations

import subprocess

import pytest

from tests.app.cli.command import visionserve
from tests.harness.local_server import LocalServer, free_port


def _smoke(url: str, timeout: str = "30") -> subprocess.CompletedProcess[str]:
    return visionserve("smoke-test", "--url", url, "--timeout", timeout)


@pytest.mark.service
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
    (line,) = done.stderr.splitlines()  # no traceback
    assert line.startswith("smoke test FAILED: ") and "not ready after 3s: cannot reach" in line
