"""The response cache under gunicorn: a hit runs no batch, and the multiprocess metrics count what the worker holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import RANDOM_SETTINGS
from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo
from tests.server.metrics_text import total

pytestmark = pytest.mark.service

ENTRIES = 2
CACHED = {**RANDOM_SETTINGS, "workers": 1, "cache_max_entries": ENTRIES}  # one worker: a repeat meets its cache


@pytest.fixture(scope="module")
def cached() -> Iterator[LocalServer]:
    with LocalServer(CACHED) as running:
        yield running


def _predict(url: str, image: bytes) -> dict:
    answer = requests.post(f"{url}/v1/predict", data=image, headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"][0]


def _batches(url: str) -> float:
    return total(url, "visionserve_batch_size_count")


def test_a_hit_runs_no_batch(cached: LocalServer) -> None:
    image = encode(photo("astronaut"), quality=80)
    first = _predict(cached.url, image)
    batches, hits = _batches(cached.url), total(cached.url, "visionserve_cache_hits_total")
    again = [_predict(cached.url, image) for _ in range(3)]
    assert _batches(cached.url) == batches
    assert total(cached.url, "visionserve_cache_hits_total") == hits + 3
    assert all(hit["cached"] and hit["heads"] == first["heads"] for hit in again)


def test_the_least_recently_used_answer_is_evicted_and_the_gauges_follow(cached: LocalServer) -> None:
    images = [encode(photo("rocket"), quality=quality) for quality in (70, 71, 72)]
    for image in images[:ENTRIES]:  # the cache is now full of these two, whatever it held before
        assert not _predict(cached.url, image)["cached"]
    evicted = total(cached.url, "visionserve_cache_evictions_total", bound="entries")
    assert not _predict(cached.url, images[2])["cached"]
    assert total(cached.url, "visionserve_cache_evictions_total", bound="entries") == evicted + 1
    assert total(cached.url, "visionserve_cache_entries") == ENTRIES
    assert total(cached.url, "visionserve_cache_bytes") > 0
    batches = _batches(cached.url)
    assert _predict(cached.url, images[2])["cached"]  # the newest is kept
    assert _batches(cached.url) == batches
    assert not _predict(cached.url, images[0])["cached"]  # the oldest left at the third
    assert _batches(cached.url) == batches + 1
