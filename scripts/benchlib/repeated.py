"""The repeated-image workload: the same few photos again and again, against one server with the response cache off
and one with it on, settings otherwise equal, in the same run: the speedup, and the latency of a hit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .load import LoadClient, Probe
from .procfs import wait_for_idle
from .server_stats import scrape

REPEAT_CLIENTS = 16
MAX_REPEAT_CLIENTS = 512
CACHE_ENTRIES = 1024  # far more than the photos: once each was sent, every request is a hit
PRIME_TIME_LIMIT_S = 120.0
COUNTERS = {
    "hits": "visionserve_cache_hits_total",
    "misses": "visionserve_cache_misses_total",
    "batches": "visionserve_batch_size_count",
}
METHOD = (
    "repeated images: the benchmark's photos sent again and again by closed-loop clients, measured once against a "
    "server with the response cache off and once with it on (cache_max_entries {entries}), settings otherwise "
    "equal; each photo is sent once before the warm-up, so with the cache on every measured request is a hit (the "
    "window's hit ratio says so) and its p50 is the p50 of a hit; the speedup is the ratio of accepted img/s"
)


class CacheProbe:
    """Another probe's window, plus the server's cache hits, misses and batches over it."""

    def __init__(self, url: str, inner: Probe) -> None:
        self.url = url
        self.inner = inner

    def open(self) -> None:
        self.inner.open()
        self.before = scrape(self.url)

    def close(self) -> dict[str, Any]:
        result = self.inner.close()
        after = scrape(self.url)
        cache = {key: after.get(name, 0.0) - self.before.get(name, 0.0) for key, name in COUNTERS.items()}
        looked_up = cache["hits"] + cache["misses"]
        cache["hit_ratio"] = round(cache["hits"] / looked_up, 4) if looked_up else None
        return {**result, "cache": cache}


def compare(off: Mapping[str, Any], on: Mapping[str, Any], clients: int, photos: int) -> dict[str, Any]:
    """The two windows side by side: the speedup of accepted img/s and the p50 of a hit."""
    slow = off["throughput_img_s"]
    return {
        "concurrency": clients,
        "photos": photos,
        "cache_entries": CACHE_ENTRIES,
        "off": dict(off),
        "on": dict(on),
        "speedup": round(on["throughput_img_s"] / slow, 2) if slow else None,
        "hit_p50_ms": on["p50_ms"],
        "hit_ratio": on["cache"]["hit_ratio"],
        "method": METHOD.format(entries=CACHE_ENTRIES),
    }


def run_repeated(
    start_server: Callable[[dict[str, object]], Any],
    settings: Mapping[str, object],
    photos: Sequence[bytes],
    clients: int,
    *,
    duration: float,
    warmup: float,
    honor_retry_after: bool,
    wait_idle: float,
    probe: Callable[[str, Any], Probe],
) -> dict[str, Any]:
    """Start a server with the cache off, then one with it on; run the same load against each.

    `start_server(settings)` is a context manager giving (server, threads, start); `probe(url, threads)` makes the
    window's probe of the server (the load levels' probe).
    """
    windows = {}
    for name, entries in (("off", 0), ("on", CACHE_ENTRIES)):
        wait_for_idle(wait_idle)
        with start_server({**settings, "cache_max_entries": entries}) as (server, threads, _):
            client = LoadClient(server.url, photos, honor_retry_after)
            client.run_requests(1, len(photos), PRIME_TIME_LIMIT_S)  # each photo once: with the cache on, cached
            windows[name] = client.run(clients, duration, warmup, CacheProbe(server.url, probe(server.url, threads)))
    return compare(windows["off"], windows["on"], clients, len(photos))


def repeated_line(repeated: Mapping[str, Any]) -> str:
    """The workload, as printed while the benchmark runs."""
    off, on = repeated["off"], repeated["on"]
    return (
        f"  repeated images ({repeated['photos']} photos, c={repeated['concurrency']}): cache off "
        f"{off['throughput_img_s']:.2f} img/s p50 {off['p50_ms']} ms, cache on {on['throughput_img_s']:.2f} img/s "
        f"p50 {on['p50_ms']} ms (hit ratio {repeated['hit_ratio']}, batches {on['cache']['batches']:g}): "
        f"speedup {repeated['speedup']}x\n"
        f"         {repeated['method']}"
    )
