"""The response cache: each image's answer, kept per worker for the next time the same image asks the same thing.

Off by default (`cache_max_entries` 0). Least recently used answers go first when either bound is reached: a count
(`cache_max_entries`) and an estimate of the bytes held (`cache_max_bytes`). Each gunicorn worker is a process with
its own cache, so a repeated image hits only when it reaches a worker that answered it before. What a key covers:
app/cache_keys.py.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
import numpy as np

from app.cache_keys import KeyMaker, model_identity

if TYPE_CHECKING:
    from app.metrics import Metrics
    from app.models.classifier import Classifier
    from app.settings import Settings

V = TypeVar("V")
ENTRY_OVERHEAD_BYTES = 200  # per entry besides its answer and key: the ordered dict's node, the tuple, the size


def approx_bytes(value: object, seen: set[int] | None = None) -> int:
    """An upper estimate of the memory an answer holds: sys.getsizeof of it and of all it contains, each once.

    Strings shared with the model (labels) are counted in every answer that holds them; an array that is a view
    counts its base, which the cache keeps alive: store copies of rows, not views into a batch.
    """
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, np.ndarray):
        return size + (0 if value.base is None else value.nbytes + approx_bytes(value.base, seen))
    if isinstance(value, dict):
        members: Iterable[object] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        members = value
    elif isinstance(value, msgspec.Struct):
        members = [getattr(value, name) for name in value.__struct_fields__]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        members = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return size
    return size + sum(approx_bytes(member, seen) for member in members)


@dataclass(frozen=True)
class Lookup(Generic[V]):
    """One request's images in the cache: per image its key (none when the cache is off) and the answer found."""

    keys: list[bytes]
    found: list[V | None]

    @property
    def missing(self) -> list[int]:
        """Positions of the images the cache did not answer."""
        return [position for position, hit in enumerate(self.found) if hit is None]


class ResponseCache(Generic[V]):
    """Answers by key, least recently used first out; safe to call from any thread (one lock, held briefly)."""

    def __init__(self, max_entries: int, max_bytes: int, identity: str = "", metrics: Metrics | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._keys = KeyMaker(identity)
        self._metrics = metrics
        self._entries: OrderedDict[bytes, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, settings: Settings, classifier: Classifier, metrics: Metrics) -> ResponseCache:
        return cls(settings.cache_max_entries, settings.cache_max_bytes, model_identity(settings, classifier), metrics)

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def keys(self, request: object, images: Sequence[object]) -> list[bytes]:
        return self._keys.keys(request, images)

    def lookup(self, request: Any) -> Lookup[V]:
        """Each image of the request: its answer when kept (now the most recently used), else None.

        With the cache off nothing is hashed or counted.
        """
        if not self.enabled:
            return Lookup([], [None] * len(request.images))
        keys = self.keys(request, request.images)
        found = [self.get(key) for key in keys]
        if self._metrics is not None:
            hits = sum(hit is not None for hit in found)
            self._metrics.cache_hits.inc(hits)
            self._metrics.cache_misses.inc(len(found) - hits)
        return Lookup(keys, found)

    def store(self, lookup: Lookup[V], answers: Sequence[V]) -> None:
        """Keep the answers computed for a lookup's missing images, given in their order."""
        if not self.enabled:
            return
        for position, answer in zip(lookup.missing, answers, strict=True):
            self.put(lookup.keys[position], answer)

    def get(self, key: bytes) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: bytes, answer: V) -> None:
        """Keep `answer` (never mutate it afterwards: hits share it); one larger than max_bytes is not kept."""
        size = ENTRY_OVERHEAD_BYTES + len(key) + approx_bytes(answer)
        if not self.enabled or size > self.max_bytes:
            return
        evicted = {"entries": 0, "bytes": 0}
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[key] = (answer, size)
            self._bytes += size
            while len(self._entries) > self.max_entries:
                self._evict()
                evicted["entries"] += 1
            while self._bytes > self.max_bytes:
                self._evict()
                evicted["bytes"] += 1
            entries, held = len(self._entries), self._bytes
        if self._metrics is not None:
            for bound, count in evicted.items():
                if count:
                    self._metrics.cache_evictions.labels(bound).inc(count)
            self._metrics.cache_entries.set(entries)
            self._metrics.cache_bytes.set(held)

    def _evict(self) -> None:
        _, (_, size) = self._entries.popitem(last=False)
        self._bytes -= size
