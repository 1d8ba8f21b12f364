"""The Makefile installs what each job needs: the service for `make run`, the test tools only for `make test`.

Checked with `make -n` (print, do not run) against a venv folder of the test's own, so nothing is installed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, require_tool

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _dry_run(venv: Path, *args: str) -> list[str]:
    """The commands `make` would run, one per line."""
    make = require_tool("make")
    command = [make, "-n", "-C", str(ROOT), f"VENV={venv}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.splitlines()


def _installs(lines: list[str]) -> list[str]:
    return [line for line in lines if " -m pip install " in line and "--upgrade pip" not in line]


def _what(lines: list[str]) -> list[str]:
    """What each pip install installs (its last two words: `-e .` or `-e '.[test]'`)."""
    return [" ".join(line.split()[-2:]) for line in _installs(lines)]


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    return tmp_path / "venv"


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A venv where the service is installed (its stamp newer than pyproject.toml), without the test tools."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed").touch()
    return venv


@pytest.mark.parametrize("target", ["run", "run-random", "install", "train-cifar-head"])
def test_running_the_service_installs_the_package_alone(fresh: Path, target: str) -> None:
    lines = _dry_run(fresh, target)
    assert any("-m venv" in line for line in lines)
    assert _what(lines) == ["-e ."]


def test_make_test_adds_the_test_extra(fresh: Path) -> None:
    assert _what(_dry_run(fresh, "test")) == ["-e .", "-e '.[test]'"]


def test_make_test_after_make_run_only_adds_the_test_tools(installed: Path) -> None:
    lines = _dry_run(installed, "test")
    assert not any("-m venv" in line for line in lines)
    assert _what(lines) == ["-e '.[test]'"]


def test_make_run_after_make_run_installs_nothing(installed: Path) -> None:
    assert _installs(_dry_run(installed, "run")) == []


def test_torch_index_reaches_every_pip_install(fresh: Path) -> None:
    installs = _installs(_dry_run(fresh, "test", f"TORCH_INDEX={CPU_INDEX}"))
    assert len(installs) == 2
    assert all(f"--extra-index-url {CPU_INDEX} " in line for line in installs)


def test_without_torch_index_pip_uses_its_own_configuration(fresh: Path) -> None:
    assert not any("index-url" in line for line in _installs(_dry_run(fresh, "test")))


def test_an_old_python_is_named_before_anything_is_installed(fresh: Path) -> None:
    make = require_tool("make")
    old_python = fresh.parent / "python3.10"
    old_python.write_text("#!/bin/sh\nexit 1\n")  # what `python -c 'sys.exit(version < 3.11)'` answers on 3.10
    old_python.chmod(0o755)
    command = [make, "-C", str(ROOT), f"VENV={fresh}", f"PYTHON={old_python}", "install"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "needs Python 3.11 or newer" in result.stderr
    assert not fresh.exists()


def test_train_cifar_head_falls_back_to_fake_data_offline(installed: Path) -> None:
    (line,) = [line for line in _dry_run(installed, "train-cifar-head") if "train_cifar_head.py" in line]
    assert "--offline-fallback" in line and "--output weights/cifar10_head.pt" in line
