"""The classifier: a runtime that answers every head in one pass, and the postprocess that ranks labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.answers import LabelScore
from app.imaging import INPUT_SIZE
from app.models.network import HeadInfo, build_network
from app.runtimes.base import Runtime
from app.runtimes.factory import build_runtime
from app.settings import Settings


@dataclass(frozen=True)
class Sample:
    """One preprocessed image and what its request asks of it."""

    pixels: np.ndarray  # 224 x 224 x 3 uint8
    heads: frozenset[str]
    top_k: int


Ranked = dict[str, list[LabelScore]]  # head -> top-k labels, best first


class Classifier:
    """Runs batches: stacked pixels -> one forward for every head -> each sample's top-k."""

    def __init__(self, runtime: Runtime, heads: dict[str, HeadInfo]) -> None:
        self.runtime = runtime
        self.heads = heads  # in the network's output order

    @classmethod
    def from_settings(cls, settings: Settings) -> Classifier:
        network, heads = build_network(settings)
        return cls(build_runtime(settings, network, heads), heads)

    def predict(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """N x 224 x 224 x 3 uint8 -> {head: N x classes probabilities}."""
        return dict(zip(self.heads, self.runtime.forward(pixels), strict=True))

    def classify(self, samples: list[Sample]) -> list[Ranked]:
        """The batch function: one forward for the batch, then each sample's own top-k."""
        return self.postprocess(self.predict(np.stack([sample.pixels for sample in samples])), samples)

    def postprocess(self, probabilities: dict[str, np.ndarray], samples: list[Sample]) -> list[Ranked]:
        """Top-k with labels per sample and head, as TorchServe's ImageClassifier.postprocess does."""
        ranked: list[Ranked] = [{} for _ in samples]
        for row, sample in enumerate(samples):
            for name in sorted(sample.heads):
                probs = probabilities[name][row]
                k = min(sample.top_k, probs.shape[0])
                best = np.argpartition(-probs, k - 1)[:k] if k < probs.shape[0] else np.arange(probs.shape[0])
                best = best[np.argsort(-probs[best], kind="stable")]
                labels = self.heads[name].labels
                ranked[row][name] = [LabelScore(labels[i], int(i), round(float(probs[i]), 6)) for i in best]
        return ranked

    def warm_up(self, batch_size: int, smallest: bool = True) -> None:
        """A forward at batch 1 (when `smallest`) and at the largest batch: the first request pays nothing extra."""
        for size in sorted({1, batch_size} if smallest else {batch_size}):
            self.predict(np.zeros((size, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))
