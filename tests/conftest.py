"""Shared fixtures: sample photos, and the tool policy (skip on a laptop, fail in CI)."""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import resnet50

from app.launcher import LocalServer

REQUIRE_TOOLS = os.environ.get("VISIONSERVE_REQUIRE_TOOLS") == "1"


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it, or fail when VISIONSERVE_REQUIRE_TOOLS=1."""
    here = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    path = shutil.which(name, path=here)  # tools installed by pip live beside the interpreter
    if path is None:
        message = f"{name} is not installed"
        if REQUIRE_TOOLS:
            pytest.fail(f"{message} and VISIONSERVE_REQUIRE_TOOLS=1")
        pytest.skip(message)
    return path


def photo(name: str = "chelsea", size: tuple[int, int] = (500, 375)) -> Image.Image:
    """A real photo bundled in scikit-image's wheel, resized."""
    from skimage import data

    array = getattr(data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return Image.fromarray(array[..., :3]).convert("RGB").resize(size)


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


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


RANDOM_SETTINGS = {
    "weights": "random",
    "cifar_head": "random",
    "workers": 2,
    "torch_threads": 1,
    "max_batch_size": 8,
    "max_wait_ms": 20,
}


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """A real gunicorn with 2 workers on 127.0.0.1, random weights chosen explicitly."""
    with LocalServer(RANDOM_SETTINGS) as running:
        yield running
