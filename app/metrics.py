"""Prometheus metrics, correct under gunicorn (prometheus-client multiprocess mode)."""

from __future__ import annotations

import functools
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import REASONS
from app.settings import HEADS
from app.worker_states import MULTIPROC_ENV

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256)
# The kubelet's probes, ours and the Open Inference Protocol's: no API key, served over the connection cap.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
# Probes and scrapes are not traffic: they would inflate in-flight (an HPA metric) and the request counters.
UNTRACKED_PATHS = PROBE_PATHS | {"/metrics"}
DROP_REASONS = ("deadline", "disconnect")
DROP_STAGES = ("decode", "queue")
CACHE_BOUNDS = ("entries", "bytes")  # which bound of the response cache evicted an answer
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """Every metric the service exports; one instance per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        pod_total = functools.partial(Gauge, registry=r, multiprocess_mode="livesum")  # summed over live workers
        self.requests = Counter(
            "visionserve_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "visionserve_request_duration_seconds",
            "Time to answer a request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = pod_total("visionserve_requests_in_flight", "Requests being handled.")
        self.preprocess_seconds = Histogram(
            "visionserve_preprocess_seconds",
            "Decode + resize + normalise, per image.",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "visionserve_queue_wait_seconds",
            "Time an image waited for its batch to start.",
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "visionserve_inference_seconds", "Forward pass of one batch.", buckets=STAGE_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "visionserve_batch_size", "Images per forward pass.", buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = pod_total("visionserve_queue_depth", "Images waiting for a batch.")
        self.queue_capacity = pod_total("visionserve_queue_capacity", "Images the queue admits before 503 (max_queue).")
        self.connections_open = pod_total(
            "visionserve_connections_open", "Client connections open (idle keep-alive ones included)."
        )
        self.connections_capacity = pod_total(
            "visionserve_connections_capacity", "Connections the workers hold before 503 (max_connections per worker)."
        )
        self.connections_paused = pod_total(
            "visionserve_connections_paused",
            "Keep-alive connections left unread for now after a 503 queue_full (retry pacing, retry_pause_max_s).",
        )
        self.retry_pauses = Counter(
            "visionserve_retry_pauses", "Times a connection was left unread after a 503 queue_full.", registry=r
        )
        self.images = Counter("visionserve_images", "Images classified (response cache hits included).", registry=r)
        self.predictions = Counter("visionserve_predictions", "Predictions answered, by head.", ["head"], registry=r)
        self.rejections = Counter("visionserve_rejections", "Requests refused, by reason.", ["reason"], registry=r)
        self.dropped_images = Counter(
            "visionserve_dropped_images",
            "Images never run: their deadline passed or their client left, by reason and the stage they were in.",
            ["reason", "stage"],
            registry=r,
        )
        self.cache_hits = Counter(
            "visionserve_cache_hits", "Images answered from the response cache (no decode, no inference).", registry=r
        )
        self.cache_misses = Counter(
            "visionserve_cache_misses", "Images looked up in the response cache and not found.", registry=r
        )
        self.cache_evictions = Counter(
            "visionserve_cache_evictions",
            "Answers dropped from the response cache, least recently used first, by the bound that was reached.",
            ["bound"],
            registry=r,
        )
        self.cache_entries = pod_total(
            "visionserve_cache_entries", "Answers held in the response caches (each worker has its own)."
        )
        self.cache_bytes = pod_total(
            "visionserve_cache_bytes", "Estimated bytes held by the response caches (each worker has its own)."
        )
        self.ready = pod_total("visionserve_ready", "Workers ready to serve (weights loaded, warm, not draining).")
        self.workers = pod_total("visionserve_workers", "Worker processes serving (compare with visionserve_ready).")
        self.model_info = Gauge(
            "visionserve_model_info",
            "The model being served (value 1).",
            ["version", "weights", "cifar_head", "device", "runtime", "precision"],
            registry=r,
            multiprocess_mode="livemax",
        )
        for reason in REASONS:
            self.rejections.labels(reason)
        for head in HEADS:
            self.predictions.labels(head)
        for bound in CACHE_BOUNDS:
            self.cache_evictions.labels(bound)
        for reason in DROP_REASONS:
            for stage in DROP_STAGES:
                self.dropped_images.labels(reason, stage)

    def exposition(self) -> tuple[bytes, str]:
        """The text to answer on /metrics: all workers' values in multiprocess mode."""
        if multiprocess_enabled():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetricsMiddleware:
    """Pure ASGI: counts requests by route template (never the raw path) and times them."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACKED_PATHS:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        counted = False

        def count(status: int) -> None:
            """Once per request, before the answer leaves: a client that has its answer sees it counted."""
            nonlocal counted
            counted = True
            self.metrics.in_flight.dec()
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.metrics.requests.labels(label, method, str(status)).inc()
            self.metrics.request_seconds.labels(label).observe(time.perf_counter() - start)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                count(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not counted:  # no answer started: an error the server error middleware turns into a 500
                count(500)
