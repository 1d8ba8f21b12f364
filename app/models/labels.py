"""Class labels of each head."""

from __future__ import annotations

from torchvision.models import ResNet50_Weights

IMAGENET_LABELS: tuple[str, ...] = tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
CIFAR10_LABELS: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FEATURE_DIM = 2048
