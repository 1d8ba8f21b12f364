"""The CIFAR-10 head checkpoint: the one place that writes and reads its format."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.models.labels import CIFAR10_LABELS, FEATURE_DIM
from app.models.weights import (
    NO_HEAD,
    WeightsError,
    WeightsInfo,
    random_info,
    sha256_of,
    torch_load,
    verified_file,
    without_paths,
)

CIFAR_HEAD_FORMAT = "visionserve-cifar10-head/1"
SHAPES = {"weight": (len(CIFAR10_LABELS), FEATURE_DIM), "bias": (len(CIFAR10_LABELS),)}
# How to serve a head, for the messages that tell a user the cifar10 head is missing (start-up errors, the 400).
HOW_TO_SERVE = (
    "VISIONSERVE_CIFAR_HEAD=/path/to/head.pt, a checkpoint from `make train-cifar-head` "
    "(chart: config.cifar_head, or cifarHead.* to mount one)"
)
# The 400 head_unavailable, after the head's name.
NOT_LOADED = (
    "not loaded on this server (its cifar_head setting is 'none'). "
    f"To enable cifar10: {HOW_TO_SERVE}; or VISIONSERVE_CIFAR_HEAD=random (untrained, to try the API)"
)
METADATA_KEYS = ("accuracy", "dataset", "epochs", "created", "backbone_weights", "backbone_sha256")


def checkpoint(head: nn.Linear, backbone: WeightsInfo, test_accuracy: float, dataset: str, epochs: int) -> dict:
    """Plain types and tensors only: loadable by torch.load(weights_only=True)."""
    state: dict[str, Any] = {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
    return {
        "format": CIFAR_HEAD_FORMAT,
        "state_dict": state,
        "classes": list(CIFAR10_LABELS),
        "backbone_weights": backbone.source,
        "backbone_sha256": backbone.sha256,
        "accuracy": test_accuracy,
        "dataset": dataset,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "epochs": epochs,
    }


def save(data: dict, output: Path) -> str:
    """Write atomically (temp file + rename) and return the file's sha256."""
    output = output.expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    torch.save(data, partial)
    partial.replace(output)
    return sha256_of(output)


def load_cifar_head_state(spec: str, expected_sha256: str, seed: int) -> tuple[dict | None, WeightsInfo]:
    """Resolve the CIFAR-10 head; kind 'none' means the head is not served, a None state means random init."""
    if spec in {"none", ""}:
        return None, NO_HEAD
    if spec == "random":
        return None, random_info(seed)
    path, digest = verified_file(spec, expected_sha256, "cifar_head")
    data = torch_load(path, "cifar_head")
    if not isinstance(data, dict) or data.get("format") != CIFAR_HEAD_FORMAT:
        raise WeightsError(
            f"cifar_head: {path} is not a checkpoint made by scripts/train_cifar_head.py "
            f"(expected format {CIFAR_HEAD_FORMAT!r})",
            "cifar_head",
        )
    if tuple(data.get("classes", ())) != CIFAR10_LABELS:
        raise WeightsError(
            f"cifar_head: {path} has classes {data.get('classes')}, expected {CIFAR10_LABELS}", "cifar_head"
        )
    state = data.get("state_dict")
    if not isinstance(state, dict) or {k: tuple(getattr(v, "shape", ())) for k, v in state.items()} != SHAPES:
        raise WeightsError(
            f"cifar_head: {path} state_dict must hold exactly weight {SHAPES['weight']} and bias {SHAPES['bias']}",
            "cifar_head",
        )
    metadata = {k: without_paths(data[k]) if isinstance(data[k], str) else data[k] for k in METADATA_KEYS if k in data}
    return state, WeightsInfo("file", f"file {path.name}", digest, metadata, location=str(path))
