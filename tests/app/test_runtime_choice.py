"""Which runtime and precision: decided from the settings and what the hardware reports; the model cache is keyed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from app import __version__
from app.models.network import build_network
from app.runtimes import openvino_runtime
from app.runtimes.base import UnsupportedError
from app.runtimes.choice import openvino_precision, resolve_device, resolve_runtime, torch_precision
from app.runtimes.factory import model_cache_dir
from app.settings import Settings, SettingsError
from tests.helpers import on_a_worker_thread

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
AMX_CPU = ("FP32", "BF16", "INT8", "BIN", "EXPORT_IMPORT")
AVX2_CPU = ("FP32", "INT8", "BIN", "EXPORT_IMPORT")


def test_auto_means_openvino_on_the_cpu_and_torch_on_cuda() -> None:
    assert resolve_runtime("auto", CPU) == "openvino"
    assert resolve_runtime("auto", CUDA) == "torch"
    assert resolve_runtime("torch", CPU) == "torch"
    with pytest.raises(UnsupportedError, match="runs on the CPU"):
        resolve_runtime("openvino", CUDA)
    with pytest.raises(SettingsError, match="runtime=openvino runs on the CPU"):
        Settings(runtime="openvino", device="cuda")


@pytest.mark.parametrize(
    ("requested", "capabilities", "chosen"),
    [("auto", AMX_CPU, "bf16"), ("auto", AVX2_CPU, "fp32"), ("fp32", AMX_CPU, "fp32"), ("bf16", AMX_CPU, "bf16")],
)
def test_openvino_precision_follows_what_the_cpu_reports(
    requested: str, capabilities: tuple[str, ...], chosen: str
) -> None:
    assert openvino_precision(requested, capabilities) == chosen


def test_bf16_on_a_cpu_without_it_is_refused_with_what_it_offers() -> None:
    with pytest.raises(UnsupportedError, match="needs a CPU that OpenVINO reports BF16 on; this one offers FP32"):
        openvino_precision("bf16", AVX2_CPU)


@pytest.mark.parametrize(
    ("requested", "device", "capabilities", "chosen"),
    [
        ("auto", CPU, ("avx2",), "fp32"),
        ("auto", CPU, ("avx2", "avx512", "avx512_bf16", "amx_tile"), "bf16"),
        ("auto", CUDA, ("NVIDIA H100", "bf16"), "bf16"),
        ("auto", CUDA, ("Tesla T4",), "fp16"),
        ("fp32", CUDA, ("NVIDIA H100", "bf16"), "fp32"),
        ("bf16", CPU, ("avx2",), "bf16"),  # autocast on the CPU, as asked
    ],
)
def test_torch_precision(requested: str, device: torch.device, capabilities: tuple[str, ...], chosen: str) -> None:
    assert torch_precision(requested, device, capabilities) == chosen


def test_fp16_on_the_cpu_with_torch_is_refused() -> None:
    with pytest.raises(UnsupportedError, match="needs CUDA"):
        torch_precision("fp16", CPU, ("avx2",))


def test_the_model_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert model_cache_dir("auto") == tmp_path / "visionserve"
    assert model_cache_dir("off") is None
    assert model_cache_dir(str(tmp_path / "mine")) == tmp_path / "mine"


def test_other_weights_get_another_cache_key(weights_file: Path) -> None:
    _, from_file = build_network(Settings(weights=str(weights_file)))
    _, seed0 = build_network(Settings(weights="random"))
    _, seed1 = build_network(Settings(weights="random", random_seed=1))
    _, with_cifar = build_network(Settings(weights="random", cifar_head="random"))
    keys = {openvino_runtime.cache_key(heads) for heads in (from_file, seed0, seed1, with_cifar)}
    assert len(keys) == 4
    assert openvino_runtime.cache_key(seed0) == openvino_runtime.cache_key(build_network(Settings(weights="random"))[1])


def test_a_warm_cache_skips_conversion_and_gives_the_same_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    network, heads = build_network(Settings(weights="random"))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    cold = on_a_worker_thread(openvino_runtime.build, network, heads, precision="auto", threads=2, cache=tmp_path)
    assert (tmp_path / openvino_runtime.cache_key(heads) / "model.xml").is_file()

    def no_conversion(network: object) -> None:
        raise AssertionError("a warm start must not convert")

    monkeypatch.setattr(openvino_runtime, "convert", no_conversion)
    with caplog.at_level(logging.INFO, logger="visionserve"):
        warm = on_a_worker_thread(openvino_runtime.build, network, heads, precision="auto", threads=2, cache=tmp_path)
    assert any("comes from the cache" in record.getMessage() for record in caplog.records)
    answers = [on_a_worker_thread(runtime.forward, pixels) for runtime in (cold, warm)]
    for a, b in zip(*answers, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_an_unwritable_cache_is_reported_and_the_model_still_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    network, heads = build_network(Settings(weights="random"))
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="visionserve"):
        runtime = on_a_worker_thread(openvino_runtime.build, network, heads, precision="auto", threads=2, cache=blocked)
    assert any("cannot write the model cache" in record.getMessage() for record in caplog.records)
    outputs = on_a_worker_thread(runtime.forward, np.zeros((1, 224, 224, 3), dtype=np.uint8))
    assert outputs[0].shape == (1, 1000)


def test_cuda_without_a_gpu_says_what_the_container_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(UnsupportedError, match=r"built for CUDA 13\.0\) sees no GPU: the container needs one"):
        resolve_device("cuda")


def test_cuda_on_a_torch_without_cuda_names_the_image_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(UnsupportedError) as caught:
        resolve_device("cuda")
    message = str(caught.value)
    assert f"is built without CUDA: run ghcr.io/visionserve/visionserve:{__version__}" in message
    assert message.count("\n") == 0 and "device=cpu" in message
    assert resolve_device("auto") == CPU  # auto never fails: it falls back to the CPU


def test_auto_device_with_runtime_openvino_is_the_cpu_even_beside_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "openvino") == CPU  # OpenVINO runs on the CPU: asking for it is not an error
    assert resolve_device("auto", "torch") == CUDA
    assert resolve_device("auto") == CUDA
    assert resolve_runtime("openvino", resolve_device("auto", "openvino")) == "openvino"
