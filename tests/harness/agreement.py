"""How closely two runtimes agree on the same pictures: top-1 agreement, top-5 overlap, cosine similarity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from app.imaging import to_pixels
from tests.helpers import photo

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def varied_photos() -> np.ndarray:
    """16 pictures: four photos at different sizes, turned, mirrored, in grey and with swapped colours."""
    pictures: list[Image.Image] = []
    for name, size in zip(PHOTOS, ((500, 375), (320, 480), (640, 640), (900, 300)), strict=True):
        image = photo(name, size)
        r, g, b = image.split()
        pictures += [
            image,
            image.rotate(90, expand=True),
            ImageOps.mirror(ImageOps.grayscale(image).convert("RGB")),
            Image.merge("RGB", (b, r, g)),
        ]
    return np.stack([to_pixels(picture) for picture in pictures])


@dataclass(frozen=True)
class Agreement:
    top1: float  # share of rows whose best class is the same
    top5: float  # mean share of the five best classes in common
    cosine: float  # the lowest cosine similarity of two rows

    def at_least(self, top1: float, top5: float, cosine: float) -> bool:
        return self.top1 >= top1 and self.top5 >= top5 and self.cosine >= cosine


def agreement(reference: np.ndarray, output: np.ndarray) -> Agreement:
    """Row by row, one head's scores from two runtimes (shape: pictures x classes)."""
    assert reference.shape == output.shape, (reference.shape, output.shape)
    top1 = float(np.mean(reference.argmax(1) == output.argmax(1)))
    top5 = float(
        np.mean(
            [len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5 for a, b in zip(reference, output, strict=True)]
        )
    )
    cosine = np.sum(reference * output, 1) / (np.linalg.norm(reference, axis=1) * np.linalg.norm(output, axis=1))
    return Agreement(top1, top5, float(cosine.min()))
