"""ResNet-50 backbone + ImageNet and CIFAR-10 heads: one forward pass answers both; postprocess ranks labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import resnet50

from app.answers import LabelScore
from app.models.cifar_head import load_cifar_head_state
from app.models.labels import CIFAR10_LABELS, FEATURE_DIM, IMAGENET_LABELS
from app.models.weights import WeightsError, WeightsInfo, load_backbone_state
from app.settings import Settings

log = logging.getLogger("visionserve")


@dataclass(frozen=True)
class Sample:
    """One preprocessed image and what its request asks of it."""

    pixels: torch.Tensor  # 3 x 224 x 224, normalised
    heads: frozenset[str]
    top_k: int


Ranked = dict[str, list[LabelScore]]  # head -> top-k labels, best first


@dataclass(frozen=True)
class Head:
    """A linear classifier on the 2048-d features, its labels and where its weights came from."""

    name: str
    layer: nn.Linear
    labels: tuple[str, ...]
    weights: WeightsInfo


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise WeightsError("device=cuda was requested but no CUDA device is available; use device=cpu or auto")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def _seeded(seed: int, build):
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


class Classifier:
    """Runs batches: stacked images -> backbone once -> requested heads -> probabilities."""

    def __init__(self, backbone: nn.Module, heads: dict[str, Head], device: torch.device) -> None:
        self.backbone = backbone
        self.heads = heads
        self.device = device

    @classmethod
    def from_settings(cls, settings: Settings) -> Classifier:
        device = resolve_device(settings.device)
        state, backbone_info = load_backbone_state(settings.weights, settings.weights_sha256, settings.random_seed)
        model = _seeded(settings.random_seed, lambda: resnet50(weights=None))
        if state is not None:
            try:
                model.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                message = f"weights: {backbone_info.source} does not fit ResNet-50: {str(exc)[:300]}"
                raise WeightsError(message) from None
        imagenet = Head("imagenet", model.fc, IMAGENET_LABELS, backbone_info)
        model.fc = nn.Identity()
        heads = {"imagenet": imagenet}

        head_state, head_info = load_cifar_head_state(
            settings.cifar_head, settings.cifar_head_sha256, settings.random_seed
        )
        if head_info.kind != "none":
            layer = _seeded(settings.random_seed + 1, lambda: nn.Linear(FEATURE_DIM, len(CIFAR10_LABELS)))
            if head_state is not None:
                layer.load_state_dict(head_state)
                _warn_on_backbone_mismatch(head_info, backbone_info)
            heads["cifar10"] = Head("cifar10", layer, CIFAR10_LABELS, head_info)
        for head in heads.values():
            if head.weights.is_random:
                log.warning("%s head serves RANDOM weights, as configured: %s", head.name, head.weights.source)
        return cls(model, heads, device).prepare()

    def prepare(self) -> Classifier:
        """Eval mode, channels_last, on the device."""
        self.backbone = self.backbone.eval().to(self.device, memory_format=torch.channels_last)
        for head in self.heads.values():
            head.layer.eval().to(self.device)
        return self

    @torch.inference_mode()
    def predict(self, batch: torch.Tensor, heads: set[str]) -> dict[str, torch.Tensor]:
        """N x 3 x 224 x 224 -> {head: N x classes probabilities on the CPU}."""
        images = batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        features = self.backbone(images)
        return {name: torch.softmax(self.heads[name].layer(features), dim=1).float().cpu() for name in heads}

    def classify(self, samples: list[Sample]) -> list[Ranked]:
        """The batch function: stack -> one forward for every head any sample asked for -> each sample's top-k."""
        heads = set().union(*(sample.heads for sample in samples))
        probabilities = self.predict(torch.stack([sample.pixels for sample in samples]), heads)
        return self.postprocess(probabilities, samples)

    def postprocess(self, probabilities: dict[str, torch.Tensor], samples: list[Sample]) -> list[Ranked]:
        """Top-k with labels per sample and head, as TorchServe's ImageClassifier.postprocess does."""
        ranked: list[Ranked] = [{} for _ in samples]
        for name, probs in probabilities.items():
            labels = self.heads[name].labels
            k = min(max(sample.top_k for sample in samples if name in sample.heads), probs.shape[1])
            scores, indices = torch.topk(probs, k, dim=1)
            for row, sample in enumerate(samples):
                if name in sample.heads:
                    n = min(sample.top_k, k)
                    ranked[row][name] = [
                        LabelScore(labels[index], index, round(score, 6))
                        for index, score in zip(indices[row, :n].tolist(), scores[row, :n].tolist(), strict=True)
                    ]
        return ranked

    def warm_up(self, batch_size: int) -> None:
        """Run a forward at batch 1 and at the largest batch so the first request pays nothing extra."""
        for size in sorted({1, batch_size}):
            self.predict(torch.zeros(size, 3, 224, 224), set(self.heads))
