"""Weights: local files with sha256, torchvision's cache, explicit random, and refusals that explain."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torchvision.models import ResNet50_Weights

from app.models import weights as weights_module
from app.models.cifar_head import CIFAR_HEAD_FORMAT, load_cifar_head_state
from app.models.labels import CIFAR10_LABELS
from app.models.network import build_network
from app.models.weights import WeightsError, load_backbone_state, sha256_of
from app.settings import Settings


def test_a_local_file_loads_with_its_sha256(weights_file: Path) -> None:
    digest = sha256_of(weights_file)
    state, info = load_backbone_state(str(weights_file), digest, seed=0)
    assert info.kind == "file" and info.sha256 == digest and not info.is_random
    assert state is not None and state["fc.weight"].shape == (1000, 2048)


def test_the_loaded_model_uses_the_file_not_random_init(weights_file: Path) -> None:
    network, _ = build_network(Settings(weights=str(weights_file), torch_threads=1))
    expected = torch.load(weights_file, weights_only=True)["fc.weight"]
    assert torch.equal(network.heads["imagenet"].weight, expected)


def test_a_wrong_sha256_is_refused_with_both_digests(weights_file: Path) -> None:
    with pytest.raises(WeightsError, match="sha256 mismatch") as caught:
        load_backbone_state(str(weights_file), "0" * 64, seed=0)
    assert sha256_of(weights_file) in str(caught.value)


def test_a_missing_file_says_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"does not exist.*visionserve fetch-weights"):
        load_backbone_state(str(tmp_path / "nothing.pth"), "", seed=0)


def test_a_corrupt_file_is_refused(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02 this is not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        load_backbone_state(str(corrupt), "", seed=0)


def test_a_state_dict_of_another_model_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}, other)
    with pytest.raises(WeightsError, match="does not fit ResNet-50"):
        build_network(Settings(weights=str(other), torch_threads=1))


def test_random_is_explicit_and_says_so() -> None:
    state, info = load_backbone_state("random", "", seed=3)
    assert state is None and info.is_random and "NOT trained" in info.source


@pytest.fixture
def torch_home(tmp_path: Path) -> Iterator[Path]:
    previous = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(tmp_path)
    try:
        yield tmp_path
    finally:
        if previous is None:
            del os.environ["TORCH_HOME"]
        else:
            os.environ["TORCH_HOME"] = previous


def _cache_file(torch_home: Path, filename: str, source: Path) -> Path:
    cached = torch_home / "hub" / "checkpoints" / filename
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(source.read_bytes())
    return cached


def test_torchvision_weights_come_from_the_cache_verified_by_their_published_prefix(
    torch_home: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = sha256_of(weights_file)
    published = SimpleNamespace(name="IMAGENET1K_V2", url=f"https://download.invalid/resnet50-{digest[:8]}.pth")
    monkeypatch.setattr(weights_module, "torchvision_weights", lambda name: published)
    _cache_file(torch_home, f"resnet50-{digest[:8]}.pth", weights_file)
    state, info = load_backbone_state("imagenet", "", seed=0)
    assert info.kind == "torchvision" and "IMAGENET1K_V2" in info.source and info.sha256 == digest
    assert state is not None and "fc.weight" in state


def test_a_cached_file_that_is_not_torchvisions_is_refused(torch_home: Path, weights_file: Path) -> None:
    _cache_file(torch_home, Path(ResNet50_Weights.IMAGENET1K_V2.url).name, weights_file)
    with pytest.raises(WeightsError, match="does not start with 11ad3fa6"):
        load_backbone_state("imagenet", "", seed=0)
    _, info = load_backbone_state("imagenet", sha256_of(weights_file), seed=0)  # unless its sha256 is vouched for
    assert info.kind == "torchvision"


def test_cifar_head_none_and_random_are_reported_in_plain_words() -> None:
    assert load_cifar_head_state("none", "", seed=0)[1].kind == "none"
    assert load_cifar_head_state("random", "", seed=0)[1].is_random


def test_a_file_that_is_not_a_cifar_head_is_refused(weights_file: Path) -> None:
    with pytest.raises(WeightsError, match="train_cifar_head"):
        load_cifar_head_state(str(weights_file), "", seed=0)


def test_torchvision_weights_missing_offline_explain_the_fix(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(url: str, *args: object, **kwargs: object) -> None:
        raise OSError(f"no route to {url}")  # what an offline machine answers

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsError) as caught:
        load_backbone_state("imagenet", "", seed=0)
    message = str(caught.value)
    assert "IMAGENET1K_V2" in message and str(torch_home) in message and "visionserve fetch-weights" in message


def _head_checkpoint(path: Path, **overrides: object) -> Path:
    checkpoint = {
        "format": CIFAR_HEAD_FORMAT,
        "classes": list(CIFAR10_LABELS),
        "state_dict": {"weight": torch.zeros(10, 2048), "bias": torch.zeros(10)},
        "backbone_sha256": "f" * 64,
        "accuracy": 0.5,
        "dataset": "CIFAR-10",
    }
    checkpoint.update(overrides)
    torch.save(checkpoint, path)
    return path


def test_a_head_checkpoint_with_wrong_tensors_is_refused(tmp_path: Path) -> None:
    bad_bias = _head_checkpoint(tmp_path / "a.pt", state_dict={"weight": torch.zeros(10, 2048), "bias": torch.zeros(9)})
    with pytest.raises(WeightsError, match="exactly weight"):
        load_cifar_head_state(str(bad_bias), "", seed=0)
    not_a_dict = _head_checkpoint(tmp_path / "b.pt", state_dict=[1, 2])
    with pytest.raises(WeightsError, match="exactly weight"):
        load_cifar_head_state(str(not_a_dict), "", seed=0)


def test_a_head_trained_on_another_backbone_is_flagged(
    tmp_path: Path, weights_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    head = _head_checkpoint(tmp_path / "head.pt")
    settings = Settings(weights=str(weights_file), cifar_head=str(head), torch_threads=1)
    with caplog.at_level(logging.WARNING, logger="visionserve"):
        _, heads = build_network(settings)
    assert "cifar10" in heads
    assert heads["cifar10"].weights.metadata["backbone_sha256"] == "f" * 64
    assert any("trained on backbone sha256" in record.getMessage() for record in caplog.records)


def test_answers_name_a_weights_file_by_its_name_and_logs_by_its_full_path(weights_file: Path) -> None:
    _, info = load_backbone_state(str(weights_file), sha256_of(weights_file), seed=0)
    assert info.source == f"file {weights_file.name}" and str(weights_file.parent) not in info.source
    assert info.location == str(weights_file) and str(weights_file) in info.described


def test_a_head_checkpoint_that_names_full_paths_is_answered_without_them(tmp_path: Path) -> None:
    named = "torchvision ResNet50_Weights.IMAGENET1K_V2 (/home/me/.cache/torch/hub/checkpoints/resnet50-11ad3fa6.pth)"
    head = _head_checkpoint(tmp_path / "head.pt", backbone_weights=named)
    _, info = load_cifar_head_state(str(head), "", seed=0)
    assert info.source == "file head.pt" and info.location == str(head)
    assert info.metadata["backbone_weights"] == "torchvision ResNet50_Weights.IMAGENET1K_V2 (resnet50-11ad3fa6.pth)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("file /srv/models/resnet50.pth", "file resnet50.pth"),
        ("file C:\\models\\resnet50.pth", "file resnet50.pth"),
        ("file ~/models/a.pth and ./b/c.pth", "file a.pth and c.pth"),
        ("random initialisation (seed 0): NOT trained", "random initialisation (seed 0): NOT trained"),
        ("from https://download.pytorch.org/models/x.pth", "from https://download.pytorch.org/models/x.pth"),
    ],
)
def test_without_paths_keeps_file_names_only(text: str, expected: str) -> None:
    assert weights_module.without_paths(text) == expected
