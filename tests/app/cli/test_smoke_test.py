"""`visionserve smoke-test` (what `helm test` runs) against a real server, and against nothing."""

from __future__ import annotations

import subprocess
from http.server import BaseHTTPRequestHandler

import pytest

from app.cli.smoke_test import check
from tests.app.cli.command import visionserve
from tests.harness.local_server import LocalServer, free_port
from tests.helpers import stand_in


def _smoke(url: str, timeout: str = "30") -> subprocess.CompletedProcess[str]:
    return visionserve("smoke-test", "--url", url, "--timeout", timeout)


@pytest.mark.service
def test_smoke_test_passes_against_a_running_service(server: LocalServer) -> None:
    done = _smoke(server.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "PASS /readyz ready",
        "PASS /healthz answers",
        "PASS /v2/health/ready ready (Open Inference Protocol V2)",
    ]
    assert "RANDOM weights" in lines[3]
    assert any(line.startswith("PASS predict imagenet") for line in lines)
    assert any(line.startswith("PASS predict cifar10") for line in lines)  # the fixture serves both heads
    assert lines[-1].startswith("PASS /metrics exports")


def test_smoke_test_fails_clearly_when_nothing_answers() -> None:
    done = _smoke(f"http://127.0.0.1:{free_port()}", timeout="3")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()  # no traceback
    assert line.startswith("smoke test FAILED: ") and "not ready after 3s: cannot reach" in line


class NotReadyByTheProtocol(BaseHTTPRequestHandler):
    """A service whose own probes pass but whose Open Inference Protocol readiness answers false (400)."""

    def do_GET(self) -> None:
        self.send_response(400 if self.path == "/v2/health/ready" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_smoke_test_fails_when_the_open_inference_protocol_says_not_ready() -> None:
    with stand_in(NotReadyByTheProtocol) as url, pytest.raises(RuntimeError, match=r"^/v2/health/ready: 400 "):
        check(url, 5)
