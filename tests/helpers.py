"""Helpers shared by test modules: the tool policy, photos and pictures of every accepted kind, a tiny CIFAR-10 head."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import numpy as np
import pytest
from PIL import Image

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "scripts" / "train_cifar_head.py"

REQUIRE_TOOLS = os.environ.get("VISIONSERVE_REQUIRE_TOOLS") == "1"


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it, or fail when VISIONSERVE_REQUIRE_TOOLS=1."""
    here = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    path = shutil.which(name, path=here)  # tools installed by pip live beside the interpreter
    if path is None:
        require(False, f"{name} is not installed")
    return path


def require(available: bool, missing: str) -> None:
    """Skip when something a test needs is missing (saying what), or fail when VISIONSERVE_REQUIRE_TOOLS=1."""
    if available:
        return
    if REQUIRE_TOOLS:
        pytest.fail(f"{missing} and VISIONSERVE_REQUIRE_TOOLS=1")
    pytest.skip(missing)


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


def animated(fmt: str) -> bytes:
    frames = [photo("chelsea", (120, 90)), photo("coffee", (120, 90))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def palette_with_transparency() -> bytes:
    image = photo("coffee", (100, 80)).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(image, "PNG", transparency=0)


def sixteen_bit_gray() -> bytes:
    ramp = np.linspace(0, 65535, 200 * 150, dtype=np.uint16).reshape(150, 200)
    return encode(Image.fromarray(ramp), "PNG")


PICTURES = {
    "jpeg": lambda: encode(photo()),
    "png": lambda: encode(photo(), "PNG"),
    "webp": lambda: encode(photo(), "WEBP"),
    "gif": lambda: encode(photo(), "GIF"),
    "bmp": lambda: encode(photo(), "BMP"),
    "cmyk-jpeg": lambda: encode(photo().convert("CMYK"), "JPEG"),
    "rgba-png": lambda: encode(photo().convert("RGBA"), "PNG"),
    "gray-alpha-png": lambda: encode(photo().convert("LA"), "PNG"),
    "palette-transparent-png": palette_with_transparency,
    "16-bit-png": sixteen_bit_gray,
    "animated-gif": lambda: animated("GIF"),
    "animated-webp": lambda: animated("WEBP"),
    "grayscale-jpeg": lambda: encode(photo().convert("L"), "JPEG"),
    "tiny-png": lambda: encode(photo("coffee", (3, 2)), "PNG"),
}


def train_tiny_head(output: Path, train_size: int = 64, test_size: int = 32) -> subprocess.CompletedProcess[str]:
    """Run the training script on a few FakeData images with a random backbone; fail with its output."""
    command = [
        sys.executable,
        str(TRAIN_SCRIPT),
        "--fake-data",
        "--weights",
        "random",
        "--train-size",
        str(train_size),
        "--test-size",
        str(test_size),
        "--epochs",
        "2",
        "--threads",
        "2",
        "--device",
        "cpu",
        "--output",
        str(output),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def run_script(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one of the repository's scripts with this interpreter, from the repository root."""
    return subprocess.run(
        [sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module (scripts/ is not a package), to use its functions and constants."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def on_a_worker_thread(call: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run `call` on a thread of its own, as the service runs its model (on the inference thread).

    OpenVINO compiling from its cache on the main thread leaves that thread unusable for the Go runtime that
    helm-python-sdk loads into this same test process (a segfault in a later chart test), so tests that build
    or run an OpenVINO runtime do it off the main thread, like the service.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="inference") as pool:
        return pool.submit(call, *args, **kwargs).result()


@contextlib.contextmanager
def stand_in(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A stand-in HTTP server on 127.0.0.1 answering with `handler`, in a thread: its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()
