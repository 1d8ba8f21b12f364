"""A head trained by scripts/train_cifar_head.py, served by a real gunicorn server; a wrong sha256 stops it."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import torch

from app.models.labels import CIFAR10_LABELS
from app.models.weights import sha256_of
from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo

pytestmark = [pytest.mark.service, pytest.mark.slow]


def head_settings(path: Path, sha256: str) -> dict[str, object]:
    return {"weights": "random", "cifar_head": str(path), "cifar_head_sha256": sha256, "workers": 1, "torch_threads": 2}


@pytest.fixture(scope="module")
def head(tiny_head: tuple[Path, str]) -> Path:
    return tiny_head[0]


def printed_settings(stdout: str) -> dict[str, str]:
    """The settings the training script prints after `serve it`, as LocalServer settings (no VISIONSERVE_ prefix)."""
    line = stdout.split("serve it", 1)[1].splitlines()[1]
    words = shlex.split(line)
    assert words[-2:] == ["make", "run"], line
    return {name.removeprefix("VISIONSERVE_").lower(): value for name, value in (w.split("=", 1) for w in words[:-2])}


@pytest.fixture(scope="module")
def server(tiny_head: tuple[Path, str]) -> Iterator[LocalServer]:
    """Started with exactly the settings the script printed for the head it trained (offline: FAKE data)."""
    printed = printed_settings(tiny_head[1])
    assert printed == {
        "weights": "random",
        "cifar_head": str(tiny_head[0]),
        "cifar_head_sha256": sha256_of(tiny_head[0]),
    }
    with LocalServer({**printed, "workers": 1, "torch_threads": 2}) as running:
        yield running


def test_predict_answers_with_the_trained_head(server: LocalServer, head: Path) -> None:
    response = requests.post(
        f"{server.url}/v1/predict",
        params={"heads": "cifar10", "top_k": 3},
        data=encode(photo()),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    top = body["predictions"][0]["heads"]["cifar10"]
    assert len(top) == 3
    assert all(entry["label"] in CIFAR10_LABELS for entry in top)
    assert [entry["label"] for entry in top] == [CIFAR10_LABELS[entry["index"]] for entry in top]
    assert body["weights"]["cifar10"] == f"file {head.name}"  # by name only: answers carry no file-system path
    assert str(head.parent) not in response.text


def test_models_describes_the_checkpoint(server: LocalServer, head: Path) -> None:
    response = requests.get(f"{server.url}/v1/models", timeout=30)
    assert response.status_code == 200, response.text
    cifar = response.json()["heads"]["cifar10"]
    assert cifar["available"] is True
    assert cifar["labels"] == list(CIFAR10_LABELS)
    weights = cifar["weights"]
    assert weights["kind"] == "file"
    assert weights["sha256"] == sha256_of(head)
    checkpoint = torch.load(head, map_location="cpu", weights_only=True)
    assert weights["accuracy"] == pytest.approx(checkpoint["accuracy"])
    assert weights["dataset"].startswith("FAKE: ")
    assert weights["created"] == checkpoint["created"]
    assert weights["source"] == f"file {head.name}" and str(head.parent) not in response.text


def test_wrong_sha256_stops_the_server(head: Path) -> None:
    server = LocalServer(head_settings(head, "0" * 64)).start()
    try:
        code = server.wait_exit(timeout=120)
    finally:
        server.stop()
    assert code != 0
    log = server.log()
    assert "sha256 mismatch" in log
    assert "cifar_head" in log
