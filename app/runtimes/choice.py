"""Which runtime, device and precision: from the settings and what the hardware offers, decided once at start."""

from __future__ import annotations

import torch

from app import __version__
from app.runtimes.base import UnsupportedError

# The released image: its torch is PyPI's CUDA build (requirements/image.lock), so it runs on CPU and GPU nodes.
IMAGE = "ghcr.io/visionserve/visionserve"
GPU_TAG_SUFFIX = "-gpu"  # the release workflow tags its CUDA build X.Y.Z-gpu; the chart adds it on GPU pods

# Precision names as OpenVINO's INFERENCE_PRECISION_HINT spells them.
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
# What an OpenVINO CPU capability (OPTIMIZATION_CAPABILITIES) enables.
OPENVINO_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


def no_cuda_message(built_for: str | None, version: str = torch.__version__) -> str:
    """Why device=cuda cannot run here, in one message: torch without CUDA needs another image; with CUDA, a GPU."""
    if built_for is None:
        return (
            f"device=cuda, but this image's torch {version} is built without CUDA: run "
            f"{IMAGE}:{__version__}{GPU_TAG_SUFFIX}, whose torch is built for CUDA (the chart runs it on GPU pods: "
            f"gpu.imageTagSuffix {GPU_TAG_SUFFIX}), or set device=cpu"
        )
    return (
        f"device=cuda, but torch {version} (built for CUDA {built_for}) sees no GPU: the container needs one "
        f"(the chart's gpu.enabled requests it) on a node whose NVIDIA driver supports CUDA {built_for}, "
        "or set device=cpu"
    )


def resolve_device(requested: str, runtime: str = "auto") -> torch.device:
    """auto: the GPU where torch sees one, unless the runtime asked for is OpenVINO (which runs on the CPU)."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise UnsupportedError(no_cuda_message(torch.version.cuda))
    if requested == "auto":
        return torch.device("cuda" if runtime != "openvino" and torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def resolve_runtime(requested: str, device: torch.device) -> str:
    """auto: OpenVINO on the CPU, torch on CUDA."""
    if requested == "auto":
        return "openvino" if device.type == "cpu" else "torch"
    if requested == "openvino" and device.type != "cpu":
        raise UnsupportedError("runtime=openvino runs on the CPU; on CUDA use runtime torch or auto")
    return requested


def openvino_precision(requested: str, capabilities: tuple[str, ...]) -> str:
    """auto: bf16 where the CPU offers it (AMX or AVX512-BF16, as OpenVINO reports), else fp32."""
    if requested == "auto":
        return "bf16" if "BF16" in capabilities else "fp32"
    needed = OPENVINO_CAPABILITY.get(requested)
    if needed and needed not in capabilities:
        raise UnsupportedError(
            f"precision={requested} needs a CPU that OpenVINO reports {needed} on; this one offers "
            f"{', '.join(capabilities)}: use precision auto or fp32"
        )
    return requested


def torch_capabilities(device: torch.device) -> tuple[str, ...]:
    """What torch finds: the GPU's name and bf16 support, or the CPU's vector extensions that matter."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return (name, "bf16") if torch.cuda.is_bf16_supported() else (name,)
    checks = {
        "avx2": torch.cpu._is_avx2_supported,
        "avx512": torch.cpu._is_avx512_supported,
        "avx512_bf16": torch.cpu._is_avx512_bf16_supported,
        "amx_tile": torch.cpu._is_amx_tile_supported,
    }
    return tuple(name for name, supported in checks.items() if supported())


def torch_precision(requested: str, device: torch.device, capabilities: tuple[str, ...]) -> str:
    """auto: half precision on CUDA (bf16 where supported, else fp16); on the CPU bf16 with AMX/AVX512-BF16."""
    if requested != "auto":
        if requested == "fp16" and device.type == "cpu":
            raise UnsupportedError("precision=fp16 with runtime torch needs CUDA; on the CPU use auto, fp32 or bf16")
        return requested
    if device.type == "cuda":
        return "bf16" if "bf16" in capabilities else "fp16"
    return "bf16" if {"amx_tile", "avx512_bf16"} & set(capabilities) else "fp32"
