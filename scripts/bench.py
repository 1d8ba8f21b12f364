"""Benchmark visionserve: the in-process model ceiling vs the real server with batching on and off.

Run with `make bench` (or `.venv/bin/python scripts/bench.py --duration 10`). Everything stays on
127.0.0.1; every loop is bounded by time or count; only the servers started here are stopped.
The load clients run on the same machine as the server and share its CPUs.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test harness lives in tests/
from tests.harness.local_server import LocalServer

PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket")  # colour photos bundled in scikit-image's wheel
PHOTO_SIZE = (500, 375)
JPEG_QUALITY = 90
DEFAULT_LEVELS = (1, 4, 16, 64)
REQUEST_TIMEOUT_S = 60.0
RSS_AFTER_REQUESTS = 1000
RSS_TOPUP_LIMIT_S = 600.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
IDLE_CORES = 0.3  # --wait-idle: the machine counts as idle below this many busy cores
NOISY_CORES = 0.25  # a phase is flagged when other processes used more than this many cores

BASE_SETTINGS: dict[str, Any] = {
    "weights": "random",
    "cifar_head": "none",
    "workers": 1,
}  # everything else: the service's own defaults, so the figures describe what users get


# --------------------------------------------------------------------------------------------- photos


def sample_photos(names: Sequence[str] = PHOTO_NAMES, size: tuple[int, int] = PHOTO_SIZE) -> list[bytes]:
    """Bundled scikit-image photos, resized to `size` and re-encoded as JPEG."""
    from skimage import data

    photos = []
    for name in names:
        array = getattr(data, name)()
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        image = Image.fromarray(array[..., :3]).convert("RGB").resize(size, Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        photos.append(buffer.getvalue())
    return photos


# ------------------------------------------------------------------------------------- CPU accounting


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is `pid`, from /proc/*/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def process_jiffies(pids: Sequence[int]) -> int:
    """user + system CPU ticks of these processes (all their threads)."""
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def busy_jiffies() -> int:
    """Machine-wide busy CPU ticks (everything but idle and iowait), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4]


@dataclass
class CpuWindow:
    """CPU used over a time window: by the server, by this process (the clients), by everything else."""

    server_pids: Sequence[int] = ()
    start: float = field(default_factory=time.monotonic)
    busy0: int = field(default_factory=busy_jiffies)
    server0: int = 0
    own0: float = field(default_factory=lambda: sum(os.times()[:2]))

    def __post_init__(self) -> None:
        self.server0 = process_jiffies(self.server_pids)

    def close(self) -> dict[str, float]:
        """Average cores busy per category since the window opened."""
        seconds = max(1e-9, time.monotonic() - self.start)
        busy = (busy_jiffies() - self.busy0) / CLK_TCK / seconds
        server = (process_jiffies(self.server_pids) - self.server0) / CLK_TCK / seconds
        own = (sum(os.times()[:2]) - self.own0) / seconds
        return {
            "busy_cores": round(busy, 2),
            "server_cores": round(server, 2),
            "client_cores": round(own, 2),
            "other_cores": round(max(0.0, busy - server - own), 2),
        }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---------------------------------------------------------------------------------- in-process ceiling


def _timed_loop(step: Callable[[], None], seconds: float, max_iterations: int = 10_000) -> list[float]:
    """Run `step` until `seconds` have passed (at least twice); per-call durations in seconds."""
    durations: list[float] = []
    end = time.monotonic() + seconds
    while (time.monotonic() < end or len(durations) < 2) and len(durations) < max_iterations:
        started = time.perf_counter()
        step()
        durations.append(time.perf_counter() - started)
    return durations


def measure_in_process(photos: Sequence[bytes], threads: int, seconds: float) -> dict[str, Any]:
    """Classifier + preprocess in this process, no HTTP: preprocess ms, batch-1 and batch-8 img/s."""
    import torch

    from app.imaging import preprocess
    from app.models.classifier import Classifier
    from app.settings import Settings

    torch.set_num_threads(threads)
    settings = Settings(weights="random", cifar_head="none", torch_threads=threads)
    classifier = Classifier.from_settings(settings)
    heads = {"imagenet"}
    limit = settings.max_pixels
    tensors = [preprocess(photo, limit) for photo in photos]
    batch8 = torch.stack([tensors[i % len(tensors)] for i in range(8)])
    window = CpuWindow()
    classifier.warm_up(8)
    for _ in range(2):
        classifier.predict(batch8[:1], heads)
        classifier.predict(batch8, heads)

    counter = iter(range(10**9))
    prep = _timed_loop(lambda: preprocess(photos[next(counter) % len(photos)], limit), seconds * 0.1)
    prep_b1: list[float] = []
    forward_b1: list[float] = []

    def prep_and_forward() -> None:
        started = time.perf_counter()
        tensor = preprocess(photos[len(prep_b1) % len(photos)], limit)
        middle = time.perf_counter()
        classifier.predict(tensor.unsqueeze(0), heads)
        forward_b1.append(time.perf_counter() - middle)
        prep_b1.append(middle - started)

    total_b1 = _timed_loop(prep_and_forward, seconds * 0.4)
    forward_b8 = _timed_loop(lambda: classifier.predict(batch8, heads), seconds * 0.5)
    cpu = window.close()
    stages = {
        "preprocess": prep,
        "batch1_forward": forward_b1,
        "preprocess_plus_batch1": total_b1,
        "batch8_forward": forward_b8,
    }
    stats = {name: _duration_stats(values) for name, values in stages.items()}
    return {
        "torch_threads": threads,
        **{f"{name}_ms": value for name, value in stats.items()},
        "batch1_img_s": round(1000.0 / stats["batch1_forward"]["mean"], 2),
        "batch8_img_s": round(8000.0 / stats["batch8_forward"]["mean"], 2),
        # The references the targets use: typical (median) iterations, robust to stalls caused by other processes.
        "ceiling_batch8_img_s": round(8000.0 / stats["batch8_forward"]["median"], 2),
        "reference_c1_ms": stats["preprocess_plus_batch1"]["median"],
        "cpu": cpu,
    }


def _duration_stats(seconds: Sequence[float]) -> dict[str, float]:
    """mean / median / p90 / max in ms, and the count."""
    ms = np.array(seconds) * 1000.0
    return {
        "mean": round(float(ms.mean()), 2),
        "median": round(float(np.median(ms)), 2),
        "p90": round(float(np.percentile(ms, 90)), 2),
        "max": round(float(ms.max()), 2),
        "n": len(ms),
    }


# ------------------------------------------------------------------------------------------ HTTP load


@dataclass
class Sample:
    """One answered request."""

    status: int
    latency_s: float
    finished: float
    server: dict[str, float] | None = None  # batch_size and stage timings from a 200 body


@dataclass
class LevelResult:
    config: str
    concurrency: int
    duration_s: float
    ok: int = 0
    shed: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    server_stats: list[dict[str, float]] = field(default_factory=list)
    error_examples: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Throughput, latency percentiles of accepted requests, shed rate and server-side breakdown."""
        answered = self.ok + self.shed + self.errors
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        stats = {
            key: round(float(np.mean([s[key] for s in self.server_stats])), 2) if self.server_stats else None
            for key in ("batch_size", "preprocess_ms", "queue_ms", "inference_ms", "total_ms", "outside_ms")
        }
        sizes = [int(s["batch_size"]) for s in self.server_stats]
        return {
            "config": self.config,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 2),
            "ok": self.ok,
            "shed": self.shed,
            "errors": self.errors,
            "throughput_img_s": round(self.ok / self.duration_s, 2),
            "p50_ms": _round(np.percentile(lat, 50)),
            "p95_ms": _round(np.percentile(lat, 95)),
            "p99_ms": _round(np.percentile(lat, 99)),
            "shed_pct": round(100.0 * self.shed / answered, 2) if answered else 0.0,
            "mean_server": stats,
            "batch_size_histogram": {str(k): sizes.count(k) for k in sorted(set(sizes))},
            "error_examples": self.error_examples[:5],
            "cpu": self.cpu,
        }


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 1)


def _server_stats(body: dict[str, Any], latency_s: float) -> dict[str, float]:
    prediction = body["predictions"][0]
    timings = prediction["timings_ms"]
    total = body["timings_ms"]["total"]
    return {
        "batch_size": prediction["batch_size"],
        "preprocess_ms": timings["preprocess"],
        "queue_ms": timings["queue"],
        "inference_ms": timings["inference"],
        "total_ms": total,
        "outside_ms": latency_s * 1000 - total,  # HTTP, parsing, event loop, client: everything but predict()
    }


class LoadClient:
    """Closed-loop clients against one server: each thread sends one request, waits, repeats."""

    def __init__(self, url: str, photos: Sequence[bytes], honor_retry_after: bool) -> None:
        self.url = f"{url}/v1/predict"
        self.photos = photos
        self.honor_retry_after = honor_retry_after
        self.accepted_total = 0  # 200s this server answered us, warm-ups included
        self._lock = threading.Lock()

    def _client(
        self, index: int, start_at: float, stop_at: float, until_accepted: float = math.inf
    ) -> list[Sample | str]:
        """One closed-loop client; keeps what finished from `start_at` on; stops at `stop_at` (or `until_accepted`)."""
        samples: list[Sample | str] = []
        with requests.Session() as session:
            session.headers["Content-Type"] = "image/jpeg"
            n = index
            while time.monotonic() < stop_at and self.accepted_total < until_accepted:
                photo = self.photos[n % len(self.photos)]
                n += 1
                started = time.perf_counter()
                try:
                    response = session.post(self.url, data=photo, timeout=REQUEST_TIMEOUT_S)
                except requests.RequestException as exc:
                    samples.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    time.sleep(0.1)
                    continue
                latency = time.perf_counter() - started
                finished = time.monotonic()
                server = _server_stats(response.json(), latency) if response.status_code == 200 else None
                if response.status_code == 200:
                    with self._lock:
                        self.accepted_total += 1
                if finished >= start_at:
                    samples.append(Sample(response.status_code, latency, finished, server))
                if response.status_code == 503 and self.honor_retry_after:
                    pause = float(response.headers.get("Retry-After", "1") or 1)
                    time.sleep(max(0.0, min(pause, stop_at - time.monotonic())))
        return samples

    def run(
        self, config: str, concurrency: int, duration: float, warmup: float, server_pids: Sequence[int]
    ) -> LevelResult:
        """Warm up, then measure `duration` seconds; requests in flight at the end finish but do not count."""
        now = time.monotonic()
        start_at, stop_at = now + warmup, now + warmup + duration
        with ThreadPoolExecutor(concurrency, thread_name_prefix="client") as pool:
            futures = [pool.submit(self._client, i, start_at, stop_at) for i in range(concurrency)]
            time.sleep(max(0.0, start_at - time.monotonic()))
            window = CpuWindow(server_pids)
            time.sleep(max(0.0, stop_at - time.monotonic()))
            cpu = window.close()
            results = [f.result() for f in futures]
        level = LevelResult(config, concurrency, duration, cpu=cpu)
        for sample in (s for samples in results for s in samples):
            _record(level, sample, stop_at)
        return level

    def top_up(self, target: int, concurrency: int, limit_s: float) -> None:
        """Send requests until this server has answered `target` with 200 (bounded by `limit_s`)."""
        stop_at = time.monotonic() + limit_s
        with ThreadPoolExecutor(concurrency, thread_name_prefix="topup") as pool:
            for future in [pool.submit(self._client, i, math.inf, stop_at, target) for i in range(concurrency)]:
                future.result()


def _record(level: LevelResult, sample: Sample | str, stop_at: float) -> None:
    if isinstance(sample, str):
        level.errors += 1
        level.error_examples.append(sample)
        return
    if sample.finished > stop_at:
        return
    if sample.status == 200:
        level.ok += 1
        level.latencies_ms.append(sample.latency_s * 1000)
        if sample.server is not None:
            level.server_stats.append(sample.server)
    elif sample.status == 503:
        level.shed += 1
    else:
        level.errors += 1
        level.error_examples.append(f"HTTP {sample.status}")


# ------------------------------------------------------------------------------------- server configs


def worker_rss_mb(master_pid: int) -> dict[int, float]:
    """VmRSS (MB) of each gunicorn worker, i.e. each child of the master."""
    rss = {}
    for pid in children_of(master_pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[pid] = round(int(line.split()[1]) / 1024.0, 1)
    return rss


def bench_server(
    name: str, settings: dict[str, object], photos: Sequence[bytes], args: argparse.Namespace, measure_rss: bool
) -> dict[str, Any]:
    """Start one server, run every load level against it, optionally top up and read worker RSS, stop it."""
    print(f"\n## {name}: starting server with {json.dumps(settings)}", flush=True)
    out: dict[str, Any] = {"settings": settings, "levels": []}
    with LocalServer(settings) as server:
        assert server.process is not None
        master = server.process.pid
        pids = [master, *children_of(master)]
        client = LoadClient(server.url, photos, not args.no_retry_after)
        for concurrency in args.levels:
            wait_for_idle(args.wait_idle)
            level = client.run(name, concurrency, args.duration, args.warmup, pids).summary()
            out["levels"].append(level)
            print(_level_line(level), flush=True)
        if measure_rss:
            client.top_up(RSS_AFTER_REQUESTS, 8, RSS_TOPUP_LIMIT_S)
            out["rss"] = {"requests_answered": client.accepted_total, "worker_rss_mb": worker_rss_mb(master)}
            print(f"worker RSS after {client.accepted_total} accepted requests: {out['rss']['worker_rss_mb']} MB")
    return out


def _level_line(level: dict[str, Any]) -> str:
    s = level["mean_server"]
    return (
        f"  c={level['concurrency']:>3}: {level['throughput_img_s']:6.2f} img/s  p50 {level['p50_ms']} ms  "
        f"p99 {level['p99_ms']} ms  shed {level['shed_pct']}%  errors {level['errors']}  "
        f"mean batch {s['batch_size']}  server ms: preprocess {s['preprocess_ms']} queue {s['queue_ms']} "
        f"inference {s['inference_ms']} outside-predict {s['outside_ms']}  cpu {level['cpu']}"
    )


# ---------------------------------------------------------------------------------------- report


def markdown_table(inproc: dict[str, Any], levels: Sequence[dict[str, Any]]) -> str:
    """The results as one Markdown table; the in-process rows carry the references the targets use."""
    b1, total = inproc["batch1_forward_ms"], inproc["preprocess_plus_batch1_ms"]
    rows = [
        "| configuration | concurrency | throughput img/s | p50 ms | p95 ms | p99 ms | shed % "
        "| mean batch | other CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| in-process batch 1 (preprocess + forward) | 1 | {1000.0 / total['mean']:.2f} | {total['median']} | "
        f"- | - | - | 1 | {inproc['cpu']['other_cores']} |",
        f"| in-process batch 1 (forward only) | 1 | {inproc['batch1_img_s']} | {b1['median']} | - | - | - | 1 | |",
        f"| in-process batch 8 (forward only) | - | {inproc['batch8_img_s']} (median iteration: "
        f"{inproc['ceiling_batch8_img_s']}) | {inproc['batch8_forward_ms']['median']} | - | - | - | 8 | |",
    ]
    for lv in levels:
        rows.append(
            f"| {lv['config']} | {lv['concurrency']} | {lv['throughput_img_s']} | {lv['p50_ms']} | "
            f"{lv['p95_ms']} | {lv['p99_ms']} | {lv['shed_pct']} | {lv['mean_server']['batch_size']} | "
            f"{lv['cpu'].get('other_cores')} |"
        )
    return "\n".join(rows)


def _find(levels: Sequence[dict[str, Any]], config: str, concurrency: int) -> dict[str, Any] | None:
    return next((lv for lv in levels if lv["config"] == config and lv["concurrency"] == concurrency), None)


def _get(level: dict[str, Any] | None, key: str) -> float | None:
    return None if level is None else level[key]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _target(name: str, value: float | None, limit: float, at_most: bool = False) -> dict[str, Any]:
    if value is None:
        return {"target": name, "ratio": None, "limit": limit, "result": "SKIP"}
    passed = value <= limit if at_most else value >= limit
    return {"target": name, "ratio": round(value, 3), "limit": limit, "result": "PASS" if passed else "FAIL"}


def check_targets(inproc: dict[str, Any], levels: Sequence[dict[str, Any]], rss_mb: float | None) -> list[dict]:
    """The service's performance targets, each as a measured ratio against its limit."""
    on1, on16, on64 = (_find(levels, "batching-on", c) for c in (1, 16, 64))
    off16 = _find(levels, "batching-off", 16)
    on16_tput = _get(on16, "throughput_img_s")
    return [
        _target(
            "c=16: batching-on throughput / in-process batch-8 ceiling >= 0.85",
            _ratio(on16_tput, inproc["ceiling_batch8_img_s"]),
            0.85,
        ),
        _target(
            "c=16: batching-on throughput / batching-off throughput >= 1.1",
            _ratio(on16_tput, _get(off16, "throughput_img_s")),
            1.1,
        ),
        _target(
            "c=64: batching-on throughput / its throughput at c=16 >= 0.9",
            _ratio(_get(on64, "throughput_img_s"), on16_tput),
            0.9,
        ),
        _target("c=64: batching-on accepted p99 / 3000 ms < 1", _ratio(_get(on64, "p99_ms"), 3000.0), 0.9999, True),
        _target(
            "c=1: batching-on p50 / in-process (preprocess + batch-1 forward) <= 1.3",
            _ratio(_get(on1, "p50_ms"), inproc["reference_c1_ms"]),
            1.3,
            True,
        ),
        _target("worker RSS after 1,000 requests / 1200 MB <= 1", _ratio(rss_mb, 1200.0), 1.0, True),
    ]


def noisy_phases(inproc: dict[str, Any], levels: Sequence[dict[str, Any]], limit: float) -> list[str]:
    """Phases during which processes other than ours used more than `limit` cores."""
    phases = [("in-process", inproc["cpu"])] + [(f"{lv['config']} c={lv['concurrency']}", lv["cpu"]) for lv in levels]
    return [f"{name} ({cpu['other_cores']} cores)" for name, cpu in phases if cpu.get("other_cores", 0) > limit]


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per load level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level")
    parser.add_argument(
        "--levels", type=lambda s: [int(v) for v in s.split(",")], default=list(DEFAULT_LEVELS), help="e.g. 1,4,16,64"
    )
    parser.add_argument("--in-process-seconds", type=float, default=20.0, help="time for the in-process ceiling")
    parser.add_argument("--max-batch-size", type=int, default=8, help="batching-on max_batch_size")
    parser.add_argument("--max-wait-ms", type=float, default=None, help="both servers (default: the service's)")
    parser.add_argument("--max-queue", type=int, default=None, help="both servers (default: the service's)")
    parser.add_argument("--no-retry-after", action="store_true", help="on 503 retry at once, not after Retry-After")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="before each phase and level, wait up to this many seconds for an idle machine",
    )
    parser.add_argument("--json", type=Path, default=Path(".bench/results.json"), help="where to write the results")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return parser.parse_args(argv)


def wait_for_idle(max_wait_s: float, threshold_cores: float = IDLE_CORES) -> None:
    """Wait (bounded) until the machine is nearly idle over a 2 s sample, so a phase starts on a quiet machine."""
    started = time.monotonic()
    busy = 0.0
    while time.monotonic() - started < max_wait_s:
        before = busy_jiffies()
        time.sleep(2.0)
        busy = (busy_jiffies() - before) / CLK_TCK / 2.0
        if busy <= threshold_cores:
            break
    waited = time.monotonic() - started
    if waited > 2.5:
        state = "idle" if busy <= threshold_cores else "still busy"
        print(f"  waited {waited:.0f}s for an idle machine: {state} ({busy:.2f} cores busy)", flush=True)


def print_header(args: argparse.Namespace, cpus: int, photos: Sequence[bytes]) -> None:
    print(f"# visionserve benchmark — {cpus} CPUs, load average {loadavg()}")
    print(
        f"NOTE: the load clients run on this machine and share its {cpus} CPUs with the server; the "
        "'other CPU' column is cores used by processes that are neither (e.g. tests running alongside)."
    )
    print(
        f"photos: {', '.join(PHOTO_NAMES)} at {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG q{JPEG_QUALITY}, "
        f"{min(map(len, photos))}-{max(map(len, photos))} bytes"
    )
    on_503 = "retry at once" if args.no_retry_after else "sleep Retry-After"
    print(
        f"clients: closed loop, one requests.Session per thread, {on_503} on 503; "
        f"warm-up {args.warmup:g}s + {args.duration:g}s measured per level {args.levels}"
    )


def print_report(
    inproc: dict[str, Any], levels: Sequence[dict[str, Any]], rss: dict[str, Any], targets: Sequence[dict]
) -> None:
    print("\n" + markdown_table(inproc, levels))
    print(
        f"\nworker RSS after {rss.get('requests_answered')} accepted requests: {rss.get('worker_rss_mb')} MB"
        "\nceiling and c=1 references use the median in-process iteration (robust to stalls caused by other load)\n"
    )
    for t in targets:
        shown = "n/a" if t["ratio"] is None else f"{t['ratio']:.3f}"
        print(f"{t['result']}  {t['target']}  (measured ratio {shown})")
    noisy = noisy_phases(inproc, levels, NOISY_CORES)
    if noisy:
        print(f"\nWARNING: other processes used CPU during: {', '.join(noisy)}; numbers are noisy.")
    print(f"load average at the end: {loadavg()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cpus = len(os.sched_getaffinity(0))
    photos = sample_photos()
    print_header(args, cpus, photos)

    print(f"\n## in-process ceiling ({args.in_process_seconds:g}s, torch threads {cpus})", flush=True)
    wait_for_idle(args.wait_idle)
    inproc = measure_in_process(photos, cpus, args.in_process_seconds)
    print(json.dumps(inproc))

    overrides = {"max_wait_ms": args.max_wait_ms, "max_queue": args.max_queue}
    common = {**BASE_SETTINGS, **{key: value for key, value in overrides.items() if value is not None}}
    on = bench_server("batching-on", {**common, "max_batch_size": args.max_batch_size}, photos, args, True)
    off = bench_server("batching-off", {**common, "max_batch_size": 1}, photos, args, False)
    levels = on["levels"] + off["levels"]
    rss = on.get("rss", {})
    rss_mb = max(rss["worker_rss_mb"].values()) if rss.get("worker_rss_mb") else None
    targets = check_targets(inproc, levels, rss_mb)
    print_report(inproc, levels, rss, targets)

    results = {
        "machine": {"cpus": cpus, "loadavg_end": loadavg(), "python": sys.version.split()[0]},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "in_process": inproc,
        "batching_on": on,
        "batching_off": off,
        "worker_rss_mb": rss_mb,
        "targets": targets,
        "noisy_phases": noisy_phases(inproc, levels, NOISY_CORES),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"results written to {args.json}")
    failed = any(t["result"] == "FAIL" for t in targets)
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
