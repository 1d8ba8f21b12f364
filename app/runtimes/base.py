"""What every runtime offers, and how it says what it chose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class RuntimeInfo:
    """Reported in /v1/models and visionserve_model_info: what runs the model, and why."""

    name: str  # openvino | torch
    precision: str  # fp32 | bf16 | fp16: the precision actually used
    device: str  # cpu | cuda
    capabilities: tuple[str, ...]  # what the runtime found on the hardware, which decided `precision`
    threads: int


class Runtime(Protocol):
    info: RuntimeInfo

    def forward(self, pixels: np.ndarray) -> list[np.ndarray]:
        """N x 224 x 224 x 3 uint8 -> one N x classes float32 softmax per head, in the network's head order."""
        ...


class UnsupportedError(ValueError):
    """The configured runtime or precision cannot run here: the service must not start."""
