"""Build the runtime the settings ask for, on the hardware found."""

from __future__ import annotations

import os
from pathlib import Path

from app.models.network import HeadInfo, Network
from app.runtimes.base import Runtime, RuntimeInfo
from app.runtimes.choice import resolve_device, resolve_runtime, torch_capabilities, torch_precision
from app.runtimes.torch_runtime import TorchRuntime
from app.settings import Settings
from app.threads import threads_per_worker


def model_cache_dir(setting: str) -> Path | None:
    """off: no cache; auto: $XDG_CACHE_HOME/visionserve (~/.cache when unset); else the directory given."""
    if setting == "off":
        return None
    if setting == "auto":
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "visionserve"
    return Path(setting).expanduser()


def build_runtime(settings: Settings, network: Network, heads: dict[str, HeadInfo]) -> Runtime:
    """OpenVINO or torch, at the precision chosen for this hardware; the torch network is dropped after conversion."""
    device = resolve_device(settings.device, settings.runtime)
    threads = threads_per_worker(settings)
    if resolve_runtime(settings.runtime, device) == "openvino":
        from app.runtimes import openvino_runtime  # imported only when used: it loads OpenVINO's plugins

        cache = model_cache_dir(settings.model_cache)
        return openvino_runtime.build(network, heads, precision=settings.precision, threads=threads, cache=cache)
    capabilities = torch_capabilities(device)
    precision = torch_precision(settings.precision, device, capabilities)
    return TorchRuntime(network, device, RuntimeInfo("torch", precision, device.type, capabilities, threads))
