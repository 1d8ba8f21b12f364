"""The classifier: a runtime that answers every head in one pass, and the postprocess that ranks labels."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    scores: bool = False  # also every class's probability per head (the Open Inference Protocol's FP32 outputs)


Ranked = dict[str, list[LabelScore]]  # head -> top-k labels, best first


@dataclass(frozen=True)
class Classified:
    """One sample's answer: its top-k per head, and every class's probability when the sample asked for them."""

    ranked: Ranked
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # head -> float32 [classes]


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

    def classify(self, samples: list[Sample]) -> list[Classified]:
        """The batch function: one forward for the batch, then each sample's own top-k."""
        return self.postprocess(self.predict(np.stack([sample.pixels for sample in samples])), samples)

    def postprocess(self, probabilities: dict[str, np.ndarray], samples: list[Sample]) -> list[Classified]:
        """Top-k with labels per sample and head, as TorchServe's ImageClassifier.postprocess does; the whole
        probability row too for a sample that asks for it (a copy: the batch's array is not kept alive)."""
        answers: list[Classified] = []
        for row, sample in enumerate(samples):
            ranked: Ranked = {}
            for name in sorted(sample.heads):
                probs = probabilities[name][row]
                k = min(sample.top_k, probs.shape[0])
                best = np.argpartition(-probs, k - 1)[:k] if k < probs.shape[0] else np.arange(probs.shape[0])
                best = best[np.argsort(-probs[best], kind="stable")]
                labels = self.heads[name].labels
                ranked[name] = [LabelScore(labels[i], int(i), round(float(probs[i]), 6)) for i in best]
            wanted = sample.heads if sample.scores else ()
            answers.append(Classified(ranked, {name: probabilities[name][row].astype(np.float32) for name in wanted}))
        return answers

    def warm_up(self, batch_size: int, smallest: bool = True) -> None:
        """A forward at batch 1 (when `smallest`) and at the largest batch: the first request pays nothing extra."""
        for size in sorted({1, batch_size} if smallest else {batch_size}):
            self.predict(np.zeros((size, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))
