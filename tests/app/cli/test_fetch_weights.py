"""`visionserve fetch-weights`: a mirror (here a file:// folder) into the torch cache, verified, then served."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from torchvision.models import ResNet50_Weights, resnet50

from app.models.weights import load_backbone_state, sha256_of
from tests.app.cli.command import own_lines, visionserve

FILENAME = Path(ResNet50_Weights.IMAGENET1K_V2.url).name


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mirror")
    torch.manual_seed(5)
    torch.save(resnet50(weights=None).state_dict(), folder / FILENAME)
    return folder


def _fetch(torch_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return visionserve("fetch-weights", *args, env={"TORCH_HOME": str(torch_home), "PATH": "/usr/bin:/bin"})


def test_fetch_puts_a_verified_file_in_the_cache_and_the_loader_finds_it(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = sha256_of(mirror / FILENAME)
    done = _fetch(tmp_path, "--mirror", mirror.as_uri(), "--sha256", digest)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "hub" / "checkpoints" / FILENAME
    assert done.stdout.splitlines() == [f"path={target}", f"sha256={digest}"]
    assert target.is_file()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _, info = load_backbone_state("imagenet", digest, seed=0)
    assert info.kind == "torchvision" and info.sha256 == digest


def test_a_file_that_does_not_match_never_reaches_the_cache(mirror: Path, tmp_path: Path) -> None:
    wrong = _fetch(tmp_path, "--mirror", mirror.as_uri(), "--sha256", "0" * 64)
    assert wrong.returncode == 1 and "sha256 mismatch" in own_lines(wrong.stderr, "fetch-weights")[0]
    prefix_only = _fetch(tmp_path, "--mirror", mirror.as_uri())  # our file cannot match torchvision's hash prefix
    assert prefix_only.returncode == 1 and "does not start with 11ad3fa6" in prefix_only.stderr
    assert not (tmp_path / "hub" / "checkpoints" / FILENAME).exists()


def test_unknown_weights_names_are_refused(tmp_path: Path) -> None:
    done = _fetch(tmp_path, "--weights", "IMAGENET22K")
    assert done.returncode == 1
    (line,) = own_lines(done.stderr, "fetch-weights")
    assert "unknown torchvision weights 'IMAGENET22K'; use imagenet" in line


def test_any_file_by_url_is_written_only_when_its_sha256_matches(tiny_head: tuple[Path, str], tmp_path: Path) -> None:
    """What the chart's cifarHead.source url runs in its init container (here a file:// URL; http(s) in a cluster)."""
    head = tiny_head[0]
    output = tmp_path / "mounted" / "cifar10_head.pt"
    url = head.as_uri()
    wrong = _fetch(tmp_path, "--url", url, "--sha256", "0" * 64, "--output", str(output))
    assert wrong.returncode == 1 and "sha256 mismatch" in wrong.stderr
    assert not output.exists() and list(output.parent.iterdir()) == []  # no partial file left behind
    done = _fetch(tmp_path, "--url", url, "--sha256", sha256_of(head), "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"path={output}", f"sha256={sha256_of(head)}"]
    assert output.read_bytes() == head.read_bytes()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--url", "file:///x", "--output", "/tmp/x"), "needs --sha256 with the file's full sha256"),
        (("--url", "file:///x"), "--url and --output go together"),
    ],
)
def test_a_url_without_its_sha256_or_output_is_a_usage_error(args: tuple[str, ...], says: str, tmp_path: Path) -> None:
    done = _fetch(tmp_path, *args)
    assert done.returncode == 2 and says in done.stderr
