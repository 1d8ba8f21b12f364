"""The network every runtime runs: uint8 pixels -> normalise -> ResNet-50 backbone once -> every head's softmax."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet50

from app.models.cifar_head import load_cifar_head_state
from app.models.labels import CIFAR10_LABELS, FEATURE_DIM, IMAGENET_LABELS
from app.models.weights import WeightsError, WeightsInfo, load_backbone_state
from app.settings import Settings

log = logging.getLogger("visionserve")

# ImageNet normalisation on 0-255 pixels: one source for the torch graph, OpenVINO's preprocessing and the
# inverse below.
MEAN_255 = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD_255 = (0.229 * 255, 0.224 * 255, 0.225 * 255)
_MEAN_CHW = np.array(MEAN_255, dtype=np.float32).reshape(3, 1, 1)
_STD_CHW = np.array(STD_255, dtype=np.float32).reshape(3, 1, 1)


def pixels_from_normalised(tensor: np.ndarray) -> np.ndarray:
    """3 x H x W float, ImageNet-normalised (what clients that preprocess send) -> H x W x 3 uint8 pixels.

    The inverse of Normalise, so the one runtime graph (uint8 in, normalisation inside) serves such clients too:
    x * std + mean, rounded to the nearest pixel value and clipped to 0-255. A tensor made from 8-bit pixels comes
    back exactly; finer values lose what lies under half a pixel step (at most 0.5 / (255 * std), about 0.009 in
    normalised units), and values outside the pixel range are clipped to it.
    """
    pixels = np.rint(tensor.astype(np.float32) * _STD_CHW + _MEAN_CHW)
    return np.ascontiguousarray(np.clip(pixels, 0, 255).astype(np.uint8).transpose(1, 2, 0))


@dataclass(frozen=True)
class HeadInfo:
    """A head's labels and where its weights came from."""

    name: str
    labels: tuple[str, ...]
    weights: WeightsInfo


class Normalise(nn.Module):
    """N x H x W x 3 uint8 -> N x 3 x H x W float, ImageNet mean/std (channels_last memory, no copy of the layout)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN_255).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD_255).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels.permute(0, 3, 1, 2).float() - self.mean) / self.std


class Network(nn.Module):
    """Normalised images -> backbone features once -> a softmax per head, in `names` order."""

    def __init__(self, backbone: nn.Module, heads: dict[str, nn.Linear]) -> None:
        super().__init__()
        self.backbone = backbone
        self.names = tuple(heads)
        self.heads = nn.ModuleDict(heads)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.backbone(images)
        return tuple(torch.softmax(self.heads[name](features), dim=1) for name in self.names)


def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _warn_on_backbone_mismatch(head: WeightsInfo, backbone: WeightsInfo) -> None:
    """A head trained on other backbone weights gives meaningless answers: say so loudly."""
    trained_on = head.metadata.get("backbone_sha256")
    if trained_on and backbone.sha256 and trained_on != backbone.sha256:
        log.warning(
            "the cifar10 head was trained on backbone sha256 %s but the backbone served has %s: "
            "its predictions will be wrong; retrain it with scripts/train_cifar_head.py",
            trained_on,
            backbone.sha256,
        )


def build_network(settings: Settings) -> tuple[Network, dict[str, HeadInfo]]:
    """Load the configured weights into the torch network (eval mode, CPU) and describe its heads."""
    state, backbone_info = load_backbone_state(settings.weights, settings.weights_sha256, settings.random_seed)
    model = _seeded(settings.random_seed, lambda: resnet50(weights=None))
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(f"weights: {backbone_info.described} does not fit ResNet-50: {str(exc)[:300]}") from None
    layers: dict[str, nn.Linear] = {"imagenet": model.fc}
    infos = {"imagenet": HeadInfo("imagenet", IMAGENET_LABELS, backbone_info)}
    model.fc = nn.Identity()
    head_state, head_info = load_cifar_head_state(settings.cifar_head, settings.cifar_head_sha256, settings.random_seed)
    if head_info.kind != "none":
        layer = _seeded(settings.random_seed + 1, lambda: nn.Linear(FEATURE_DIM, len(CIFAR10_LABELS)))
        if head_state is not None:
            layer.load_state_dict(head_state)
            _warn_on_backbone_mismatch(head_info, backbone_info)
        layers["cifar10"] = layer  # type: ignore[assignment]
        infos["cifar10"] = HeadInfo("cifar10", CIFAR10_LABELS, head_info)
    for info in infos.values():
        if info.weights.location:
            log.info("%s head: %s", info.name, info.weights.described)
        if info.weights.is_random:
            log.warning("%s head serves RANDOM weights, as configured: %s", info.name, info.weights.source)
    return Network(model, layers).eval(), infos
