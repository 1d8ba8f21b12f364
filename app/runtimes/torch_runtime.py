"""The torch runtime: eager, channels_last, autocast to the chosen precision (CUDA's default, and the CPU fallback)."""

from __future__ import annotations

import numpy as np
import torch

from app.models.network import Network, Normalise
from app.runtimes.base import RuntimeInfo

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TorchRuntime:
    """Runs the network where it was moved, one batch at a time."""

    def __init__(self, network: Network, device: torch.device, info: RuntimeInfo) -> None:
        self.info = info
        self._device = device
        self._normalise = Normalise().to(device)
        self._network = network.to(device, memory_format=torch.channels_last).eval()
        self._dtype = DTYPES.get(info.precision)

    @torch.inference_mode()
    def forward(self, pixels: np.ndarray) -> list[np.ndarray]:
        batch = torch.from_numpy(pixels).to(self._device, non_blocking=True)
        images = self._normalise(batch).contiguous(memory_format=torch.channels_last)
        with torch.autocast(self._device.type, dtype=self._dtype or torch.float32, enabled=self._dtype is not None):
            outputs = self._network(images)
        return [output.float().cpu().numpy() for output in outputs]
