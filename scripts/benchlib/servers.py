"""The real server, one runtime at a time: time to ready (first and warm start), then every load level."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .load import LoadClient
from .procfs import CpuWindow, PeakPss, wait_for_idle
from .server_stats import ServerThreads, scrape, stage_wall_ms
from .soak import run_soak, soak_line
from .storm import run_storm, storm_line

if TYPE_CHECKING:
    from tests.harness.local_server import LocalServer


class LevelProbe:
    """The server over one measured window: /metrics deltas per stage, CPU per thread group, machine CPU."""

    def __init__(self, url: str, threads: ServerThreads) -> None:
        self.url = url
        self.threads = threads

    def open(self) -> None:
        self.window = CpuWindow(self.threads.pids)
        self.cpu0 = self.threads.sample()
        self.metrics0 = scrape(self.url)

    def close(self) -> dict[str, Any]:
        machine = self.window.close()
        cpu = self.threads.sample().minus(self.cpu0)
        stages = stage_wall_ms(self.metrics0, scrape(self.url))
        return {
            "server_ms": stages,
            "cpu_ms_per_image": cpu.ms_per_image(stages["images"] or 0.0),
            "cpu_ms": {name: round(ms, 1) for name, ms in cpu.ms().items()},  # the whole window, by thread group
            "cpu": machine,
        }


@contextmanager
def timed_server(settings: dict[str, object]) -> Iterator[tuple[LocalServer, ServerThreads, dict[str, Any]]]:
    """A started server, its threads at ready, and its time from process start until /readyz answered 200.

    LocalServer polls /readyz every 0.2 s: that is the resolution.
    """
    from tests.harness.local_server import LocalServer  # the script puts the repository root on sys.path

    window = CpuWindow()
    started = time.monotonic()
    with LocalServer(settings) as server:
        ready_s = time.monotonic() - started
        assert server.process is not None
        threads = ServerThreads(server.process.pid)
        yield server, threads, {"ready_s": round(ready_s, 2), "cpu": window.close(started=threads.pids)}


def models(url: str) -> dict[str, Any]:
    """The `model` part of GET /v1/models: runtime, precision, device, capabilities, threads."""
    with urllib.request.urlopen(f"{url}/v1/models", timeout=10) as response:
        return json.loads(response.read())["model"]


def bench_server(
    runtime: str,
    settings: dict[str, object],
    photos: Sequence[bytes],
    levels: Sequence[int],
    *,
    duration: float,
    warmup: float,
    honor_retry_after: bool,
    wait_idle: float,
    storm_clients: int = 0,
    soak_requests: int = 0,
) -> dict[str, Any]:
    """Start, stop and start again (the second start finds a warm model cache), then run every load level, then
    the retry storm and the soak where asked (0: not run)."""
    print(f"\n## server, runtime {runtime}: {json.dumps(settings)}", flush=True)
    wait_for_idle(wait_idle)
    with timed_server(settings) as (_, _, first):
        pass
    cache = " (empty model cache)" if runtime == "openvino" else ""
    print(f"  first start{cache}: ready in {first['ready_s']} s  cpu {first['cpu']}", flush=True)
    wait_for_idle(wait_idle)
    with timed_server(settings) as (server, threads, warm):
        print(f"  second start (warm): ready in {warm['ready_s']} s  cpu {warm['cpu']}", flush=True)
        model = models(server.url)
        print(f"  /v1/models: {json.dumps(model)}", flush=True)
        client = LoadClient(server.url, photos, honor_retry_after)
        results = []
        for concurrency in levels:
            wait_for_idle(wait_idle)
            with PeakPss(threads.pids) as pss:
                level = client.run(concurrency, duration, warmup, LevelProbe(server.url, threads))
            results.append({**level, "pss_mb": pss.peak_mb})
            print(level_line(results[-1]), flush=True)
        storm = soak = None
        if storm_clients:
            wait_for_idle(wait_idle)
            storm = run_storm(
                LoadClient(server.url, photos, honor_retry_after=False),
                storm_clients,
                duration=duration,
                warmup=warmup,
                probe=LevelProbe(server.url, threads),
                levels=results,
            )
            print(storm_line(storm), flush=True)
        if soak_requests:
            wait_for_idle(wait_idle)
            soak = run_soak(client, threads.workers, soak_requests, warmup=warmup)
            print(soak_line(soak), flush=True)
        decode_threads = threads.decode_threads()
    print(f"  decode threads (born after ready; expected: preprocess_threads per worker): {decode_threads}")
    return {
        "runtime": runtime,
        "settings": settings,
        "model": model,
        "start": {"first": first, "warm": warm},
        "levels": results,
        "pss_mb": max((level["pss_mb"] for level in results), default=None),
        "decode_threads": decode_threads,
        "storm": storm,
        "soak": soak,
    }


def level_line(level: dict[str, Any]) -> str:
    """One load level, as printed while the benchmark runs."""
    s, c = level["server_ms"], level["cpu_ms_per_image"]
    return (
        f"  c={level['concurrency']:>3}: {level['throughput_img_s']:7.2f} img/s  p50 {level['p50_ms']} "
        f"p95 {level['p95_ms']} p99 {level['p99_ms']} ms  shed {level['shed']} ({level['shed_pct']}%)  "
        f"errors {level['errors']}  mean batch {s['mean_batch']}  PSS {level['pss_mb']} MB\n"
        f"         wall ms/image: preprocess {s['preprocess_ms']} queue {s['queue_ms']} "
        f"inference {s['inference_ms_per_image']} (per batch {s['inference_ms_per_batch']}) "
        f"request {s['request_ms']}\n"
        f"         CPU ms/image: total {c['total']} = decode {c['decode']} + inference {c['inference']} "
        f"+ event loop {c['event_loop']} + master {c['master']}   machine {level['cpu']}"
    )
