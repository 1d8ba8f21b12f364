"""The benchmark's retry storm and soak against a real server, with tiny durations and counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.benchlib.load import LoadClient, sample_photos
from scripts.benchlib.repeated import run_repeated
from scripts.benchlib.server_stats import ServerThreads
from scripts.benchlib.servers import LevelProbe, timed_server
from scripts.benchlib.soak import run_soak
from scripts.benchlib.storm import METHOD, run_storm
from tests.harness.local_server import LocalServer

pytestmark = pytest.mark.service

SMALL = {
    "weights": "random",
    "runtime": "torch",
    "workers": 1,
    "torch_threads": 1,
    "max_batch_size": 1,
    "max_queue": 2,  # a few clients fill it: the storm meets 503s at once
    "max_images": 1,
    "retry_pause_max_s": 0,  # these tests check that the clients retry at once, not how the server paces them
}
STORM_CLIENTS = 16
STORM_SECONDS = 2.0


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LocalServer, ServerThreads]]:
    with LocalServer(SMALL) as running:
        assert running.process is not None
        yield running, ServerThreads(running.process.pid)


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return sample_photos()


def test_the_retry_storm_retries_at_once_and_prices_a_rejection(
    server: tuple[LocalServer, ServerThreads], photos: list[bytes]
) -> None:
    running, threads = server
    polite = LoadClient(running.url, photos, honor_retry_after=True)
    reference = polite.run(16, 2.0, 0.5, LevelProbe(running.url, threads))
    storm = run_storm(
        LoadClient(running.url, photos, honor_retry_after=False),
        STORM_CLIENTS,
        duration=STORM_SECONDS,
        warmup=0.5,
        probe=LevelProbe(running.url, threads),
        levels=[reference],
    )
    assert storm["errors"] == 0, storm["error_examples"]
    assert storm["ok"] > 0
    # Clients that slept Retry-After (at least 1 s) could not be refused more than once a second each.
    assert storm["shed"] > 2 * STORM_CLIENTS * STORM_SECONDS
    assert storm["server_ms"]["rejections"] > 2 * STORM_CLIENTS * STORM_SECONDS  # the server counted them too
    by_group = storm["rejection_cpu_ms_by_group"]
    assert set(by_group) == {"total", "decode", "inference", "event_loop", "master"}
    assert storm["rejection_cpu_ms"] == by_group["event_loop"]
    assert 0 < storm["rejection_cpu_ms"] < 50, by_group  # a real, small cost; 50 ms would be a broken measurement
    assert storm["rejection_method"] == METHOD


def test_a_storm_without_a_c16_level_has_no_rejection_price(
    server: tuple[LocalServer, ServerThreads], photos: list[bytes]
) -> None:
    running, threads = server
    storm = run_storm(
        LoadClient(running.url, photos, honor_retry_after=False),
        4,
        duration=0.5,
        warmup=0.1,
        probe=LevelProbe(running.url, threads),
        levels=[],
    )
    assert storm["shed"] > 0
    assert (storm["rejection_cpu_ms"], storm["rejection_cpu_ms_by_group"]) == (None, None)


def test_the_soak_sends_exactly_its_requests_and_samples_the_workers_memory(
    server: tuple[LocalServer, ServerThreads], photos: list[bytes]
) -> None:
    running, threads = server
    soak = run_soak(LoadClient(running.url, photos, honor_retry_after=True), threads.workers, 30, warmup=0.5)
    assert soak["requests"] == 30
    assert soak["ok"] + soak["shed"] + soak["errors"] == 30
    assert soak["errors"] == 0, soak["error_examples"]
    assert soak["ok"] > 0
    for sample in (soak["memory_before"], soak["memory_after"]):
        assert sample["anonymous_mb"] > 0
        assert sample["rss_mb"] > sample["anonymous_mb"]  # the libraries' file pages are resident too
        assert sample["pss_mb"] > 0
    growth = soak["growth"]
    assert growth["rss_mb"] == round(soak["memory_after"]["rss_mb"] - soak["memory_before"]["rss_mb"], 1)
    assert growth["mb"] == max(growth["rss_mb"], growth["anonymous_mb"])


def test_a_count_bound_run_also_stops_at_its_time_limit(
    server: tuple[LocalServer, ServerThreads], photos: list[bytes]
) -> None:
    running, _ = server
    bounded = LoadClient(running.url, photos, honor_retry_after=True).run_requests(4, 100_000, time_limit_s=1.0)
    assert 0 < bounded["requests"] < 100_000
    assert bounded["duration_s"] < 30  # the last requests in flight finish; it did not hang


def test_the_repeated_workload_runs_no_batch_with_the_cache_on(photos: list[bytes]) -> None:
    """Its own two servers, cache off then on; every measured request with the cache on is a hit."""
    repeated = run_repeated(
        timed_server,
        {**SMALL, "max_queue": 8, "max_images": 4},
        photos,
        2,
        duration=1.0,
        warmup=0.2,
        honor_retry_after=True,
        wait_idle=0.0,
        probe=LevelProbe,
    )
    off, on = repeated["off"], repeated["on"]
    assert off["errors"] == on["errors"] == 0, (off["error_examples"], on["error_examples"])
    assert off["ok"] > 0 and on["ok"] > 0
    assert off["cache"]["hits"] == off["cache"]["misses"] == 0  # off: nothing looked up
    assert off["cache"]["batches"] > 0
    assert on["cache"]["misses"] == on["cache"]["batches"] == 0  # the photos were sent once before the window
    assert repeated["hit_ratio"] == 1.0 and on["cache"]["hits"] > 0
    assert repeated["hit_p50_ms"] == on["p50_ms"] is not None
    assert repeated["speedup"] == round(on["throughput_img_s"] / off["throughput_img_s"], 2)
