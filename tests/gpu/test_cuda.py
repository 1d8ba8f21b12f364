"""On a CUDA GPU: the torch runtime agrees with the CPU on the same weights, and a real server serves from the GPU.

These run where torch sees a GPU (`make test-gpu` on a GPU machine); elsewhere they skip, as the bf16 comparison
does on a CPU without bf16: there is nothing to compare.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import torch

from app.models.network import HeadInfo, Network, build_network
from app.runtimes.base import RuntimeInfo
from app.runtimes.choice import torch_capabilities
from app.runtimes.torch_runtime import TorchRuntime
from app.settings import Settings
from tests.harness.agreement import agreement, varied_photos
from tests.harness.local_server import LocalServer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU here: nothing to run on")

CUDA = torch.device("cuda")
COSINE_FLOOR = {"fp32": 0.999, "bf16": 0.99, "fp16": 0.99}


@pytest.fixture(scope="module")
def built(weights_file: Path) -> tuple[Network, dict[str, HeadInfo]]:
    return build_network(Settings(weights=str(weights_file), cifar_head="random"))


@pytest.fixture(scope="module")
def cpu_fp32(built: tuple[Network, dict[str, HeadInfo]]) -> list[np.ndarray]:
    runtime = TorchRuntime(built[0], torch.device("cpu"), RuntimeInfo("torch", "fp32", "cpu", (), 2))
    return runtime.forward(varied_photos())


@pytest.mark.parametrize("precision", sorted(COSINE_FLOOR))
def test_cuda_agrees_with_the_cpu_on_the_same_weights(
    precision: str, built: tuple[Network, dict[str, HeadInfo]], cpu_fp32: list[np.ndarray]
) -> None:
    if precision == "bf16" and "bf16" not in torch_capabilities(CUDA):
        pytest.skip("this GPU has no bf16")
    runtime = TorchRuntime(built[0], CUDA, RuntimeInfo("torch", precision, "cuda", torch_capabilities(CUDA), 1))
    try:
        outputs = runtime.forward(varied_photos())
    finally:
        built[0].to("cpu")  # TorchRuntime moves the network: give the CPU reference its weights back
    for reference, output in zip(cpu_fp32, outputs, strict=True):
        assert output.dtype == np.float32 and output.shape == (16, reference.shape[1])
        found = agreement(reference, output)
        assert found.at_least(top1=0.95, top5=0.9, cosine=COSINE_FLOOR[precision]), (precision, found)


def _instances(jpeg: bytes, count: int) -> dict:
    return {"instances": [{"b64": base64.b64encode(jpeg).decode()}] * count, "top_k": 3}


def test_a_cuda_server_names_its_gpu_and_answers_batches(weights_file: Path, jpeg_bytes: bytes) -> None:
    settings = {"weights": str(weights_file), "cifar_head": "random", "device": "cuda", "workers": 1}
    with LocalServer(settings) as server:
        model = requests.get(f"{server.url}/v1/models", timeout=30).json()["model"]
        assert model["runtime"] == "torch" and model["device"] == "cuda"
        assert model["capabilities"][0] == torch.cuda.get_device_name(0)
        assert model["precision"] == ("bf16" if "bf16" in model["capabilities"] else "fp16")  # auto on CUDA
        response = requests.post(f"{server.url}/v1/predict", json=_instances(jpeg_bytes, 16), timeout=60)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert len(predictions) == 16
        assert len({p["heads"]["imagenet"][0]["index"] for p in predictions}) == 1  # one picture, one answer


def test_two_workers_share_the_one_gpu_the_pod_lists(weights_file: Path, jpeg_bytes: bytes) -> None:
    settings = {"weights": str(weights_file), "cifar_head": "random", "device": "cuda", "workers": 2}
    with LocalServer(settings, extra_env={"CUDA_VISIBLE_DEVICES": "0"}) as server:
        with ThreadPoolExecutor(8) as pool:
            answers = set(pool.map(server.best_imagenet_class, [jpeg_bytes] * 32))
        assert len(answers) == 1
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
