"""Response cache keys: a sha256 over the model's identity, what a request asks, and the image, each part typed.

Every part is written with a type tag and a length, so no two different inputs write the same stream:
- the model's identity (`model_identity`): version, runtime, precision, device, each head's weights;
- what the request asks of its images: every field of the request except those in NOT_ASKED (so a field added to
  ClassifyRequest, such as another kind of output, separates keys unless it is declared not to shape the answer);
- the image itself: every field of its input except its name (the bytes as sent, or pixels as an array).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from app import __version__

if TYPE_CHECKING:
    from app.models.classifier import Classifier
    from app.settings import Settings

NOT_ASKED = frozenset({"images", "timeout_s"})  # request fields that do not change an image's answer
NOT_CONTENT = frozenset({"name"})  # input fields that only name the image in error messages


def model_identity(settings: Settings, classifier: Classifier) -> str:
    """Everything an answer depends on besides the request, in words.

    Weights files and torchvision's weights are named by their sha256. Random weights have no checksum: they are
    made from `random_seed` (backbone and CIFAR-10 head alike), which is part of the identity, as is the weights'
    source text, so a key stays correct for them too. A worker's cache lives no longer than the weights it was filled
    with; the identity makes a key mean the same wherever it is computed.
    """
    info = classifier.runtime.info
    lines = [
        f"visionserve {__version__}",
        f"model_version {settings.model_version}",
        f"runtime {info.name} {info.precision} {info.device}",
        f"random_seed {settings.random_seed}",
    ]
    for name, head in sorted(classifier.heads.items()):
        weights = head.weights
        lines.append(f"head {name}: {weights.kind} sha256={weights.sha256} source={weights.source}")
    return "\n".join(lines)


def _part(digest: Any, tag: bytes, data: bytes | memoryview) -> None:
    digest.update(tag + len(data).to_bytes(8, "little"))
    digest.update(data)


def feed(digest: Any, value: object) -> None:
    """Write `value` into `digest` unambiguously: a type tag and a length before every part.

    Raises TypeError for a type it does not know, so a new kind of field fails loudly instead of colliding.
    """
    if isinstance(value, bytes | bytearray):
        _part(digest, b"b", value)
    elif isinstance(value, memoryview):
        _part(digest, b"b", value.cast("B"))
    elif isinstance(value, str):
        _part(digest, b"s", value.encode())
    elif value is None or isinstance(value, bool | int | float):
        _part(digest, b"n", repr(value).encode())  # True and 1 differ, as do 1 and 1.0
    elif isinstance(value, np.ndarray):
        _part(digest, b"a", f"{value.dtype.str} {value.shape}".encode())
        _part(digest, b"d", memoryview(np.ascontiguousarray(value)).cast("B"))
    elif isinstance(value, frozenset | set):
        _part(digest, b"f", b"".join(sorted(_digest_of(member) for member in value)))
    elif isinstance(value, tuple | list):
        _part(digest, b"t", str(len(value)).encode())
        for member in value:
            feed(digest, member)
    elif isinstance(value, dict):
        items = sorted(_digest_of(key) + _digest_of(member) for key, member in value.items())
        _part(digest, b"m", b"".join(items))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _part(digest, b"c", type(value).__qualname__.encode())
        for field in dataclasses.fields(value):
            feed(digest, field.name)
            feed(digest, getattr(value, field.name))
    else:
        raise TypeError(f"the response cache cannot key a {type(value).__name__}; teach cache_keys.feed")


def _digest_of(value: object) -> bytes:
    digest = hashlib.sha256()
    feed(digest, value)
    return digest.digest()


def _fields(record: object, left_out: frozenset[str]) -> list[tuple[str, Any]]:
    return [(f.name, getattr(record, f.name)) for f in dataclasses.fields(record) if f.name not in left_out]  # type: ignore[arg-type]


class KeyMaker:
    """Keys for one model: its identity is hashed once, each request's fields once, then each image."""

    def __init__(self, identity: str) -> None:
        self._model = hashlib.sha256()
        feed(self._model, identity)

    def keys(self, request: object, images: Sequence[object]) -> list[bytes]:
        """The key of each of `images`, asked by `request` (a dataclass such as ClassifyRequest)."""
        asked = self._model.copy()
        for name, value in _fields(request, NOT_ASKED):
            feed(asked, name)
            feed(asked, value)
        keys = []
        for image in images:
            digest = asked.copy()
            for name, value in _fields(image, NOT_CONTENT):
                feed(digest, name)
                feed(digest, value)
            keys.append(digest.digest())
        return keys
