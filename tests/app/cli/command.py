"""Run the `visionserve` command as a user does: a child process, bytes in, text out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from tests.helpers import ROOT


def visionserve(
    *args: str, stdin: bytes = b"", env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m app.cli ARGS` from the repository root; stdin is closed after `stdin`, never a terminal."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        input=stdin,
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def own_lines(stderr: str, command: str = "predict") -> list[str]:
    """stderr's lines, each one of the command's own (a traceback would fail this)."""
    lines = stderr.splitlines()
    assert lines and all(line.startswith(f"visionserve {command}: ") for line in lines), stderr
    return lines
