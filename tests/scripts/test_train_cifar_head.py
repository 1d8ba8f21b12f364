"""scripts/train_cifar_head.py end to end, offline: FakeData, random backbone, a checkpoint the service loads."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import torch

from app.models.cifar_head import load_cifar_head_state
from app.models.labels import CIFAR10_LABELS
from app.models.weights import WeightsError, sha256_of
from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_cifar_head.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_head: tuple[Path, str]) -> tuple[Path, str]:
    return tiny_head


def test_prints_loss_accuracy_and_sha256(trained: tuple[Path, str]) -> None:
    path, stdout = trained
    assert re.search(r"^epoch 2/2: loss \d+\.\d+$", stdout, re.MULTILINE), stdout
    assert re.search(r"^test accuracy: [01]\.\d{4} ", stdout, re.MULTILINE), stdout
    assert f"sha256: {sha256_of(path)}" in stdout


def test_checkpoint_loads_through_the_service_loader(trained: tuple[Path, str]) -> None:
    path, stdout = trained
    state, info = load_cifar_head_state(str(path), sha256_of(path), seed=0)
    assert state is not None
    assert tuple(state["weight"].shape) == (len(CIFAR10_LABELS), 2048)
    assert tuple(state["bias"].shape) == (len(CIFAR10_LABELS),)
    assert info.kind == "file"
    assert info.sha256 == sha256_of(path)
    meta = info.metadata
    assert meta["dataset"].startswith("FAKE: ")
    assert 0.0 <= meta["accuracy"] <= 1.0
    assert f"test accuracy: {meta['accuracy']:.4f}" in stdout
    assert meta["backbone_weights"].startswith("random initialisation")
    assert datetime.fromisoformat(meta["created"]).utcoffset() is not None


def test_checkpoint_holds_plain_metadata(trained: tuple[Path, str]) -> None:
    data = torch.load(trained[0], map_location="cpu", weights_only=True)
    assert data["classes"] == list(CIFAR10_LABELS)
    assert data["epochs"] == 2
    assert data["backbone_sha256"] is None  # a random backbone has no file


def test_wrong_sha256_is_refused(trained: tuple[Path, str]) -> None:
    with pytest.raises(WeightsError, match="sha256"):
        load_cifar_head_state(str(trained[0]), "0" * 64, seed=0)


def test_missing_backbone_is_an_error(tmp_path: Path) -> None:
    """No silent fallback: an unavailable backbone is an error, not random weights."""
    output = tmp_path / "h.pt"
    command = [
        sys.executable,
        str(SCRIPT),
        "--fake-data",
        "--weights",
        str(tmp_path / "missing.pt"),
        "--output",
        str(output),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "does not exist" in result.stderr
    assert not output.exists()


def test_head_learns_separable_features() -> None:
    """The training loop itself works: clustered 2048-d features are classified almost perfectly."""
    script = load_script("train_cifar_head")
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(len(CIFAR10_LABELS), 2048, generator=generator) * 3

    def sample(count: int) -> Any:
        labels = torch.arange(count) % len(CIFAR10_LABELS)
        return script.Features(centres[labels] + torch.randn(count, 2048, generator=generator), labels)

    head = script.train_head(sample(200), epochs=10, batch_size=32, lr=1e-3, seed=0)
    assert script.accuracy(head, sample(100)) > 0.9


def test_offline_fallback_trains_a_fake_head_and_prints_how_to_serve_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `make train-cifar-head` does offline: neither CIFAR-10 nor torchvision's weights can be downloaded."""
    script = load_script("train_cifar_head")

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(script.datasets, "CIFAR10", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    output = tmp_path / "cifar10_head.pt"
    argv = ["--data-dir", str(tmp_path / "cifar10"), "--offline-fallback", "--output", str(output)]
    small = ["--train-size", "16", "--test-size", "8", "--epochs", "1", "--threads", "2", "--device", "cpu"]
    assert script.main([*argv, *small]) == 0
    out, err = capsys.readouterr()
    assert "CIFAR-10 is not in" in err and "FAKE data it is" in err
    assert "not in the torch cache" in err and "falls back to random weights" in err
    assert re.search(r"^test accuracy: [01]\.\d{4} \(FAKE: ", out, re.MULTILINE), out
    hint = out.split("serve it (a FAKE head", 1)[1].splitlines()[1].split()
    assert hint == [
        "VISIONSERVE_WEIGHTS=random",
        f"VISIONSERVE_CIFAR_HEAD={output}",
        f"VISIONSERVE_CIFAR_HEAD_SHA256={sha256_of(output)}",
        "make",
        "run",
    ]
    _, info = load_cifar_head_state(str(output), sha256_of(output), seed=0)
    assert info.metadata["dataset"].startswith("FAKE: ")


def test_without_the_fallback_an_unreachable_cifar10_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script("train_cifar_head")
    monkeypatch.setattr(script.datasets, "CIFAR10", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(SystemExit, match="use --fake-data for an offline test"):
        script.main(["--data-dir", str(tmp_path), "--output", str(tmp_path / "h.pt")])
