"""The response cache on its own: LRU by count, bound by bytes, keys that separate what must differ."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pytest

from app.answers import LabelScore
from app.cache_keys import feed, model_identity
from app.metrics import Metrics
from app.models.weights import WeightsInfo, random_info
from app.pipeline import ClassifyRequest, ImageInput
from app.response_cache import ENTRY_OVERHEAD_BYTES, ResponseCache, approx_bytes
from app.settings import Settings

JPEG, PNG = b"\xff\xd8 one image", b"\x89PNG another image"
IMAGENET = frozenset({"imagenet"})
KEY_BYTES = 32  # a sha256


def _request(*images: bytes, heads: frozenset[str] = IMAGENET, top_k: int = 5) -> ClassifyRequest:
    return ClassifyRequest([ImageInput(f"image {i}", data) for i, data in enumerate(images)], heads, top_k)


def _answer(label: str = "tabby") -> dict[str, list[LabelScore]]:
    return {"imagenet": [LabelScore(label, 281, 0.5)]}


def _size(answer: object) -> int:
    return ENTRY_OVERHEAD_BYTES + KEY_BYTES + approx_bytes(answer)


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_least_recently_used_answer_leaves_first_at_the_count_bound() -> None:
    metrics = Metrics()
    cache: ResponseCache = ResponseCache(2, 1 << 20, "model", metrics)
    a, b, c = (cache.keys(_request(data), [ImageInput("x", data)])[0] for data in (b"a", b"b", b"c"))
    cache.put(a, _answer("a"))
    cache.put(b, _answer("b"))
    assert cache.get(a) == _answer("a")  # a is now the most recently used
    cache.put(c, _answer("c"))
    assert (cache.get(a), cache.get(b), cache.get(c)) == (_answer("a"), None, _answer("c"))
    assert len(cache) == 2
    assert _value(metrics, "visionserve_cache_evictions_total", bound="entries") == 1
    assert _value(metrics, "visionserve_cache_evictions_total", bound="bytes") == 0
    assert _value(metrics, "visionserve_cache_entries") == 2


def test_the_byte_bound_evicts_and_an_answer_too_large_is_not_kept() -> None:
    metrics = Metrics()
    small, large = _answer(), {"imagenet": [LabelScore(f"label {i}", i, 0.1) for i in range(50)]}
    cache: ResponseCache = ResponseCache(1000, 2 * _size(small) + 10, "model", metrics)
    keys = [bytes([i]) * KEY_BYTES for i in range(3)]
    for key in keys:
        cache.put(key, small)
    assert [cache.get(key) is not None for key in keys] == [False, True, True]
    assert cache.bytes == 2 * _size(small) <= cache.max_bytes
    assert _value(metrics, "visionserve_cache_evictions_total", bound="bytes") == 1
    assert _value(metrics, "visionserve_cache_bytes") == cache.bytes
    cache.put(b"L" * KEY_BYTES, large)
    assert cache.get(b"L" * KEY_BYTES) is None and len(cache) == 2  # larger than the whole bound: not kept


def test_replacing_a_key_counts_its_bytes_once() -> None:
    cache: ResponseCache = ResponseCache(10, 1 << 20)
    cache.put(b"k" * KEY_BYTES, _answer())
    cache.put(b"k" * KEY_BYTES, _answer())
    assert (len(cache), cache.bytes) == (1, _size(_answer()))


def test_a_lookup_counts_hits_and_misses_and_keeps_what_was_computed_for_the_misses() -> None:
    metrics = Metrics()
    cache: ResponseCache = ResponseCache(10, 1 << 20, "model", metrics)
    first = cache.lookup(_request(JPEG))
    assert first.found == [None] and first.missing == [0]
    cache.store(first, [_answer("cat")])
    mixed = cache.lookup(_request(PNG, JPEG))
    assert mixed.found == [None, _answer("cat")] and mixed.missing == [0]
    cache.store(mixed, [_answer("coffee")])
    assert cache.lookup(_request(JPEG, PNG)).found == [_answer("cat"), _answer("coffee")]
    assert _value(metrics, "visionserve_cache_hits_total") == 3
    assert _value(metrics, "visionserve_cache_misses_total") == 2


def test_when_off_nothing_is_hashed_kept_or_counted() -> None:
    metrics = Metrics()
    cache: ResponseCache = ResponseCache(0, 1 << 20, "model", metrics)
    lookup = cache.lookup(_request(JPEG, PNG))
    assert lookup.keys == [] and lookup.found == [None, None] and lookup.missing == [0, 1]
    cache.store(lookup, [_answer(), _answer()])
    assert len(cache) == 0 and not cache.enabled
    assert _value(metrics, "visionserve_cache_hits_total") == _value(metrics, "visionserve_cache_misses_total") == 0


def _key(request: ClassifyRequest, identity: str = "model") -> bytes:
    return ResponseCache(1, 1 << 20, identity).keys(request, request.images)[0]


def test_keys_separate_image_heads_top_k_and_model_and_ignore_names_and_deadlines() -> None:
    base = _request(JPEG)
    assert _key(base) == _key(base)
    assert _key(base) != _key(_request(PNG))
    assert _key(base) != _key(replace(base, heads=frozenset({"imagenet", "cifar10"})))
    assert _key(base) != _key(replace(base, top_k=6))
    assert _key(base) != _key(base, identity="model version 2")
    assert _key(base) == _key(replace(base, images=[ImageInput("another name", JPEG)]))  # names only label errors
    assert _key(base) == _key(replace(base, timeout_s=0.5))  # a deadline does not change the answer
    assert _key(replace(base, heads=frozenset({"cifar10", "imagenet"}))) == _key(
        replace(base, heads=frozenset({"imagenet", "cifar10"}))
    )


@dataclass(frozen=True)
class WithOutputs:
    """A request type with one more field, as a new kind of output would add: it separates keys by itself."""

    images: list[ImageInput]
    heads: frozenset[str]
    top_k: int
    outputs: str
    timeout_s: float | None = None


def test_a_field_added_to_the_request_separates_keys_unless_declared_otherwise() -> None:
    cache: ResponseCache = ResponseCache(1, 1 << 20, "model")
    images = [ImageInput("body", JPEG)]
    top_k = cache.keys(WithOutputs(images, IMAGENET, 5, "top_k"), images)
    probabilities = cache.keys(WithOutputs(images, IMAGENET, 5, "probabilities"), images)
    assert top_k != probabilities


@dataclass(frozen=True)
class Pixels:
    """An input of already decoded pixels, as a tensor protocol sends them."""

    name: str
    pixels: np.ndarray


def test_arrays_are_keyed_by_dtype_shape_and_values() -> None:
    cache: ResponseCache = ResponseCache(1, 1 << 20, "model")
    zeros = np.zeros((3, 4, 4), np.float32)

    def key(array: np.ndarray) -> bytes:
        return cache.keys(_request(), [Pixels("input", array)])[0]

    assert key(zeros) == key(zeros.copy())
    assert key(zeros) != key(zeros.astype(np.float64))
    assert key(zeros) != key(zeros.reshape(4, 3, 4))
    changed = zeros.copy()
    changed[2, 3, 3] = 1.0
    assert key(zeros) != key(changed)
    assert key(np.asfortranarray(changed)) == key(changed)


def _stream(value: object) -> bytes:
    digest = hashlib.sha256()
    feed(digest, value)
    return digest.digest()


def test_the_hashed_stream_is_unambiguous_and_unknown_types_are_refused() -> None:
    assert _stream(("ab", "c")) != _stream(("a", "bc"))
    assert _stream(b"1") != _stream("1") != _stream(1)
    assert _stream(True) != _stream(1) and _stream(1) != _stream(1.0)
    assert _stream({"a": 1, "b": 2}) == _stream({"b": 2, "a": 1})
    with pytest.raises(TypeError, match="cannot key a object"):
        _stream(object())


def _classifier(weights: dict[str, WeightsInfo], precision: str = "fp32") -> SimpleNamespace:
    runtime = SimpleNamespace(info=SimpleNamespace(name="openvino", precision=precision, device="cpu"))
    return SimpleNamespace(runtime=runtime, heads={name: SimpleNamespace(weights=w) for name, w in weights.items()})


def test_the_model_identity_names_version_runtime_and_every_heads_weights() -> None:
    trained = WeightsInfo("file", "file resnet.pth", "a" * 64)
    retrained = WeightsInfo("file", "file resnet.pth", "b" * 64)
    settings = Settings()

    def identity(**changes: object) -> str:
        weights = changes.pop("weights", {"imagenet": trained})
        precision = changes.pop("precision", "fp32")
        return model_identity(replace(settings, **changes), _classifier(weights, precision))  # type: ignore[arg-type]

    base = identity()
    assert base == identity()
    assert base != identity(model_version="2")
    assert base != identity(weights={"imagenet": retrained})  # same file name, other checksum
    assert base != identity(weights={"imagenet": trained, "cifar10": random_info(0)})
    assert base != identity(precision="bf16")


def test_random_weights_have_no_checksum_but_their_seed_keeps_keys_apart() -> None:
    def identity(seed: int) -> str:
        heads = {"imagenet": random_info(seed), "cifar10": random_info(seed)}
        return model_identity(Settings(random_seed=seed), _classifier(heads))  # type: ignore[arg-type]

    assert random_info(1).sha256 is None
    assert identity(1) == identity(1) and identity(1) != identity(2)


def test_a_view_counts_the_array_it_keeps_alive() -> None:
    batch = np.zeros((8, 1000), np.float32)
    assert approx_bytes(batch[0]) > batch.nbytes  # the row holds the whole batch
    assert approx_bytes(batch[0].copy()) < batch.nbytes / 4


def test_concurrent_use_keeps_the_bounds_and_the_byte_count() -> None:
    cache: ResponseCache = ResponseCache(50, 40 * _size(_answer()), "model")
    keys = [bytes([i % 256, i // 256]) * (KEY_BYTES // 2) for i in range(400)]

    def work(offset: int) -> None:
        for i in range(2000):
            key = keys[(i * 7 + offset) % len(keys)]
            if cache.get(key) is None:
                cache.put(key, _answer())

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0 < len(cache) <= 40
    assert cache.bytes == len(cache) * _size(_answer())
