"""Start a real visionserve (gunicorn + uvicorn workers) on 127.0.0.1, for tests and the benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalServer:
    """One gunicorn process we started; stopped by its own PID only."""

    settings: Mapping[str, object] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    app_spec: str | None = None  # another gunicorn app than the service's own (a test's fault injection)
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONSERVE_")}
        env.pop("CONFIG_FILE", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update({f"VISIONSERVE_{k.upper()}": str(v) for k, v in self.settings.items()})
        env["VISIONSERVE_HOST"] = "127.0.0.1"
        env["VISIONSERVE_PORT"] = str(self.port)
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        if self.app_spec is None:
            return [sys.executable, "-m", "app"]
        return [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "app" / "gunicorn_conf.py"), self.app_spec]

    def start(self) -> LocalServer:
        handle, name = tempfile.mkstemp(prefix="visionserve-", suffix=".log")
        self.log_path = Path(name)
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.environment(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        os.close(handle)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait_ready(self, timeout: float = 120.0) -> LocalServer:
        """Poll /readyz until 200; fail with the server log if it exits or times out."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()[-4000:]}")

    def best_imagenet_class(self, jpeg: bytes) -> int:
        """POST one JPEG on a connection of its own (it may reach any worker); the top ImageNet class of a 200."""
        response = requests.post(
            f"{self.url}/v1/predict?top_k=1",
            data=jpeg,
            headers={"Content-Type": "image/jpeg", "Connection": "close"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0]["heads"]["imagenet"][0]["index"]

    def exit_code_and_log(self, timeout: float = 120.0) -> tuple[int, str]:
        """Start a server expected to refuse to start: its exit code and everything it wrote (log removed)."""
        self.start()
        try:
            code = self.wait_exit(timeout=timeout)
        finally:
            self.stop()
            log = self.log()
            self.remove_log()
        return code, log

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM our gunicorn master, wait, SIGKILL only if it will not go."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def __enter__(self) -> LocalServer:
        return self.start().wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.remove_log()

    def remove_log(self) -> None:
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
