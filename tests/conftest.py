"""Shared fixtures: sample photos, weights made here, and a real server with random weights."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from starlette.testclient import TestClient
from torchvision.models import resnet50

from app.main import create_app
from app.settings import Settings
from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo, train_tiny_head


def pytest_configure(config: pytest.Config) -> None:
    """One model cache for the whole run, in a temporary folder: servers started by tests share converted models."""
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="visionserve-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("XDG_CACHE_HOME", ""), ignore_errors=True)


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    return encode(photo("chelsea"))


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    return encode(photo("coffee"), "PNG")


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet-50 state_dict made here (seeded), saved the way a user would save one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = resnet50(weights=None)
    path = tmp_path_factory.mktemp("weights") / "resnet50-made-here.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_head(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A CIFAR-10 head trained once by the real script on FakeData: (checkpoint, the script's output)."""
    path = tmp_path_factory.mktemp("head") / "head.pt"
    return path, train_tiny_head(path).stdout


RANDOM_SETTINGS = {
    "weights": "random",
    "runtime": "torch",  # the real servers cover the torch runtime; the in-process app the default, OpenVINO
    "cifar_head": "random",
    "workers": 2,
    "torch_threads": 1,
    "max_batch_size": 8,
    "max_wait_ms": 20,
    "max_queue_ms": 0,  # admission by count, batches by size: whatever this CPU's pace, bursts in these tests
    "max_batch_ms": 0,  # are all served, and batched
}


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """A real gunicorn with 2 workers on 127.0.0.1, random weights chosen explicitly."""
    with LocalServer(RANDOM_SETTINGS) as running:
        yield running


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """The app in process (one worker, random weights, both heads, the default runtime): the HTTP contract."""
    settings = Settings(**{**RANDOM_SETTINGS, "workers": 1, "runtime": "auto"})
    with TestClient(create_app(settings), raise_server_exceptions=False) as in_process:
        yield in_process
