"""A server that cannot start says why in one line, with the fix, and exits non-zero: no traceback unless debug."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.local_server import LocalServer

pytestmark = pytest.mark.service


def _failed_start(settings: dict[str, object]) -> tuple[int, str]:
    """`python -m app` with these settings: its exit code and everything it wrote."""
    return LocalServer({"workers": 1, "torch_threads": 1, **settings}).exit_code_and_log()


def test_missing_weights_name_the_fix_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "resnet50.pth"
    code, log = _failed_start({"weights": str(missing)})
    assert code != 0
    assert f"weights file {missing} does not exist" in log  # what was looked for
    assert "VISIONSERVE_WEIGHTS=/path/to/file.pth" in log and "`make run-random`" in log  # the fixes
    assert "Traceback" not in log
    assert log.count("visionserve cannot start") == 1


def test_at_log_level_debug_the_traceback_is_kept(tmp_path: Path) -> None:
    code, log = _failed_start({"weights": str(tmp_path / "resnet50.pth"), "log_level": "debug"})
    assert code != 0
    assert "make run-random" in log
    assert "Traceback (most recent call last)" in log and "WeightsError" in log


def test_a_corrupt_cifar_head_names_its_own_setting(tmp_path: Path) -> None:
    head = tmp_path / "head.pt"
    head.write_bytes(b"not a checkpoint")
    code, log = _failed_start({"weights": "random", "cifar_head": str(head)})
    assert code != 0
    assert f"cifar_head: {head} is not a readable torch checkpoint" in log
    assert "VISIONSERVE_CIFAR_HEAD=/path/to/head.pt" in log and "VISIONSERVE_CIFAR_HEAD=none" in log
    assert "Traceback" not in log
