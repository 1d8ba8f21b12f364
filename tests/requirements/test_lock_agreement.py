"""scripts/lock_agreement.py: a CPU-index lock must pin what the default lock pins, torch and torchvision aside."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT, load_script

agreement = load_script("lock_agreement")
DEFAULT = ROOT / "requirements" / "image.lock"
CUDA_ONLY = re.compile(r"^(nvidia-|cuda-|triton)")
FAKE_HASH = "--hash=sha256:" + "c" * 64


def _cpu_lock_like_the_cpu_index_would_give(default: str, torch_version: str = "2.14.1+cpu") -> str:
    """The default lock as the CPU index resolves it: torch and torchvision as +cpu files, no CUDA libraries."""
    blocks = re.split(r"\n(?=\S)", default.strip())
    versions = {"torch": torch_version, "torchvision": "0.29.1+cpu"}
    kept = []
    for block in blocks:
        name = block.split("==")[0]
        if name in versions:
            pinned = re.sub(r"==\S+", f"=={versions[name]}", block, count=1)
            kept.append(re.sub(r"--hash=sha256:[0-9a-f]{64}", FAKE_HASH, pinned))
        elif block.startswith("#") or not CUDA_ONLY.match(name):
            kept.append(block)
    return "\n".join(kept) + "\n"


def _check(tmp_path: Path, cpu_text: str) -> int:
    cpu = tmp_path / "image-cpu.lock"
    cpu.write_text(cpu_text)
    return agreement.main([str(cpu), str(DEFAULT)])


def test_a_cpu_lock_that_differs_only_in_torch_agrees(tmp_path: Path) -> None:
    text = _cpu_lock_like_the_cpu_index_would_give(DEFAULT.read_text())
    assert "nvidia-" not in text and "torch==2.14.1+cpu" in text
    assert _check(tmp_path, text) == 0


def test_another_torch_version_or_another_pin_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _cpu_lock_like_the_cpu_index_would_give(DEFAULT.read_text(), torch_version="2.13.0+cpu")
    numpy = re.search(r"^numpy==(\S+)", text, re.M)
    assert numpy is not None
    text = text.replace(f"numpy=={numpy.group(1)}", "numpy==1.26.0")
    text += "extra-package==1.0 \\\n    " + FAKE_HASH + "\n    # via torch\n"
    assert _check(tmp_path, text) == 1
    errors = capsys.readouterr().err
    assert "torch: 2.13.0+cpu on the CPU index, 2.14.1 on PyPI" in errors
    assert "numpy: 1.26.0 in the CPU lock" in errors
    assert "extra-package==1.0 is in the CPU lock only" in errors


def test_a_cpu_lock_without_torch_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(tmp_path, "") == 1
    assert "torch is missing from the CPU lock" in capsys.readouterr().err


def test_every_committed_cpu_lock_agrees() -> None:
    for lock in sorted((ROOT / "requirements").glob("image-*.lock")):
        assert agreement.main([str(lock), str(DEFAULT)]) == 0, lock


def test_the_cpu_lock_takes_only_pytorch_from_its_index_starting_from_image_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = load_script("lock_requirements")
    command = generator.compile_command("uv", "cpu")
    assert command[command.index("--torch-backend") + 1] == "cpu"  # torch, torchvision from PyTorch's CPU index
    assert command[command.index("--index-url") + 1] == "https://pypi.org/simple"  # all else from PyPI
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "image.lock").write_text(DEFAULT.read_text())
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    generator.seed_cpu_lock()  # a first CPU lock keeps image.lock's pins where uv can
    assert (tmp_path / "requirements" / "image-cpu.lock").read_text() == DEFAULT.read_text()
    (tmp_path / "requirements" / "image-cpu.lock").write_text("# reviewed\n")
    generator.seed_cpu_lock()  # an existing one is never replaced
    assert (tmp_path / "requirements" / "image-cpu.lock").read_text() == "# reviewed\n"
