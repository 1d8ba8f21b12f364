"""Where a server's time goes: its own /metrics (wall time per stage) and /proc (CPU time per group of threads)."""

from __future__ import annotations

import urllib.request
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from .procfs import CLK_TCK, children_of, process_ticks, thread_ticks

PREDICT_ROUTE = "/v1/predict"


def metric_totals(exposition: str) -> dict[str, float]:
    """Each sample name's total over its label sets (request metrics of the predict route only, no buckets)."""
    totals: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name.endswith("_bucket") or sample.labels.get("route", PREDICT_ROUTE) != PREDICT_ROUTE:
                continue
            totals[sample.name] += sample.value
    return dict(totals)


def scrape(url: str) -> dict[str, float]:
    """The server's /metrics, as metric_totals."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return metric_totals(response.read().decode())


def stage_wall_ms(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float | None]:
    """Between two scrapes: images, mean batch, and each stage's wall milliseconds per image (or per request)."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    def per(numerator: str, denominator: str, scale: float = 1000.0) -> float | None:
        count = delta(denominator)
        return round(scale * delta(numerator) / count, 2) if count > 0 else None

    return {
        "images": delta("visionserve_images_total"),
        "rejections": delta("visionserve_rejections_total"),  # every refusal the server counted (503s here)
        "mean_batch": per("visionserve_batch_size_sum", "visionserve_batch_size_count", 1.0),
        "preprocess_ms": per("visionserve_preprocess_seconds_sum", "visionserve_preprocess_seconds_count"),
        "queue_ms": per("visionserve_queue_wait_seconds_sum", "visionserve_queue_wait_seconds_count"),
        "inference_ms_per_batch": per("visionserve_inference_seconds_sum", "visionserve_inference_seconds_count"),
        "inference_ms_per_image": per("visionserve_inference_seconds_sum", "visionserve_batch_size_sum"),
        "request_ms": per(
            "visionserve_request_duration_seconds_sum", "visionserve_request_duration_seconds_count"
        ),  # every answer of the predict route, 503s included
    }


@dataclass(frozen=True)
class CpuSplit:
    """CPU ticks of one server by group: the master; the workers' event-loop threads; their decode pool; all."""

    master: int
    event_loop: int
    decode: int
    workers: int

    def minus(self, earlier: CpuSplit) -> CpuSplit:
        return CpuSplit(
            self.master - earlier.master,
            self.event_loop - earlier.event_loop,
            self.decode - earlier.decode,
            self.workers - earlier.workers,
        )

    def ms(self) -> dict[str, float]:
        """CPU ms by group; `inference` is the workers' other threads: the inference thread and the runtime's."""
        groups = {
            "total": self.master + self.workers,
            "decode": self.decode,
            "inference": self.workers - self.event_loop - self.decode,
            "event_loop": self.event_loop,
            "master": self.master,
        }
        return {name: ticks * 1000.0 / CLK_TCK for name, ticks in groups.items()}

    def ms_per_image(self, images: float) -> dict[str, float | None]:
        """CPU ms per image, by group (as `ms`)."""
        return {name: round(ms / images, 2) if images > 0 else None for name, ms in self.ms().items()}


class ServerThreads:
    """A ready server's processes, and which worker threads existed at ready: threads born later are the decode pool.

    The decode pool (a ThreadPoolExecutor) starts its threads at the first requests; the event loop is each worker's
    main thread; the inference thread and the runtime's own threads exist before the server is ready.
    """

    def __init__(self, master: int) -> None:
        self.master = master
        self.workers = children_of(master)
        self._at_ready = {pid: set(thread_ticks(pid)) for pid in self.workers}

    @property
    def pids(self) -> list[int]:
        return [self.master, *self.workers]

    def decode_threads(self) -> int:
        """How many threads the workers started after ready (expected: preprocess_threads per worker)."""
        return sum(len(set(thread_ticks(pid)) - self._at_ready[pid]) for pid in self.workers)

    def sample(self) -> CpuSplit:
        event_loop = decode = 0
        for pid in self.workers:
            threads = thread_ticks(pid)
            event_loop += threads.get(pid, 0)
            decode += sum(ticks for tid, ticks in threads.items() if tid not in self._at_ready[pid])
        return CpuSplit(process_ticks([self.master]), event_loop, decode, process_ticks(self.workers))
