"""One typed, frozen settings object: defaults <- YAML file (CONFIG_FILE) <- VISIONSERVE_* env."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "VISIONSERVE_"
CONFIG_FILE_ENV = "CONFIG_FILE"
HEADS = ("imagenet", "cifar10")
MAX_TOP_K = 1000
TIMEOUT_HEADER = "X-Request-Timeout-Ms"  # a client's deadline for its request
RUNTIMES = ("auto", "openvino", "torch")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ACCESS_LOGS = ("json", "off")
# VISIONSERVE_* variables that are not settings: the test suite's tool policy, the client commands' API key.
NOT_SETTINGS = frozenset({"VISIONSERVE_REQUIRE_TOOLS", "VISIONSERVE_API_KEY"})


class SettingsError(ValueError):
    """A configuration value is missing, unknown or out of range."""


def _setting(
    default: Any,
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    return field(default=default, metadata={"doc": doc, "low": low, "high": high, "choices": choices})


@dataclass(frozen=True)
class Settings:
    """Every knob of the service. Field metadata documents and bounds each one."""

    host: str = _setting("127.0.0.1", "Address to listen on.")
    port: int = _setting(8080, "TCP port to listen on.", low=1, high=65535)
    workers: int = _setting(1, "Gunicorn worker processes (one per pod on CPU, one per GPU).", low=1, high=64)
    graceful_timeout: float = _setting(30.0, "Seconds in-flight requests get to finish on SIGTERM.", low=1, high=3600)
    worker_timeout: int = _setting(
        300, "Seconds a silent worker lives (covers model download + load at start).", low=10, high=3600
    )
    drain_seconds: float = _setting(0.0, "Seconds /readyz answers 503 before the listener closes.", low=0, high=600)
    log_level: str = _setting("info", "Log level.", choices=("debug", "info", "warning", "error"))
    access_log: str = _setting(
        "json", "Access log: one JSON line per request on stderr (json), or none (off).", choices=ACCESS_LOGS
    )
    model_version: str = _setting("1", "Version string reported with every prediction.")

    weights: str = _setting(
        "imagenet", "Backbone + ImageNet head: 'imagenet', a torchvision weights name, a file, or 'random'."
    )
    weights_sha256: str = _setting("", "Expected sha256 of the weights file (checked when set).")
    cifar_head: str = _setting(
        "none", "CIFAR-10 head: a checkpoint from scripts/train_cifar_head.py, 'random' or 'none'."
    )
    cifar_head_sha256: str = _setting("", "Expected sha256 of the CIFAR-10 head checkpoint (checked when set).")
    random_seed: int = _setting(0, "Seed used when weights are 'random'.", low=0, high=2**31 - 1)
    device: str = _setting("auto", "Where the model runs.", choices=("auto", "cpu", "cuda"))
    runtime: str = _setting(
        "auto", "What runs the model: auto (OpenVINO on CPU, torch on CUDA), openvino, torch.", choices=RUNTIMES
    )
    precision: str = _setting(
        "auto", "auto: what the runtime does best on this hardware (bf16 on AMX/AVX512-BF16 CPUs).", choices=PRECISIONS
    )
    model_cache: str = _setting(
        "auto", "Converted-model cache: auto ($XDG_CACHE_HOME/visionserve), off, or a directory."
    )
    torch_threads: int = _setting(
        0, "Inference threads per worker (torch or OpenVINO); 0 = CPU quota / workers.", low=0, high=256
    )
    cpu_request_millicores: int = _setting(
        0,
        "The container's CPU request in millicores (the chart passes it through the downward API): without a CPU"
        " limit (no cgroup quota) inference threads follow it; 0 = the CPUs this process may run on.",
        low=0,
        high=10_000_000,
    )
    preprocess_threads: int = _setting(
        0, "Decode/resize threads per worker; 0 = a quarter of the inference threads, at least one.", low=0, high=64
    )

    max_batch_size: int = _setting(8, "A batch closes when it holds this many images.", low=1, high=256)
    max_wait_ms: float = _setting(5.0, "... or this long after its first image arrived.", low=0, high=10000)
    max_queue: int = _setting(32, "Images waiting per worker before requests get 503.", low=1, high=100000)
    max_queue_ms: float = _setting(
        500.0, "... or when they would wait longer than this at the measured pace (0 = count only).", low=0, high=6e5
    )
    max_batch_ms: float = _setting(
        250.0, "A batch holds no more images than run in this time at the measured pace (0 = no cap).", low=0, high=6e4
    )
    retry_after_s: int = _setting(
        1, "Least Retry-After seconds sent with 503 (more when the queue is long).", low=1, high=3600
    )
    retry_pause_max_s: float = _setting(
        2.0,
        "A connection refused with 503 (queue full) is not read again for about the queue's drain time, at most this"
        " long: a client that retries at once waits for room instead of spinning (0 = off, for a proxy in front that"
        " shares connections between clients).",
        low=0,
        high=60,
    )
    request_timeout_s: float = _setting(
        30.0, "Deadline of a request, and the cap on X-Request-Timeout-Ms; 504 when it passes.", low=0.001, high=3600
    )
    watchdog_forward_s: float = _setting(
        60.0, "A forward pass running longer makes the worker not ready and not live (restarted).", low=1, high=3600
    )
    watchdog_failed_batches: int = _setting(
        5, "This many failed batches in a row make the worker not ready and not live.", low=1, high=10000
    )

    max_body_bytes: int = _setting(10 * 1024 * 1024, "Largest request body (413 above).", low=1024, high=2**31)
    max_pixels: int = _setting(40_000_000, "Largest image in pixels (width x height).", low=1024, high=2**31)
    max_images: int = _setting(16, "Most images in one request (below max_queue).", low=1, high=1024)
    max_request_pixels: int = _setting(
        100_000_000, "Most pixels in one request, summed from the image headers before decoding.", low=1024, high=2**40
    )
    default_top_k: int = _setting(5, "top_k when the request names none.", low=1, high=MAX_TOP_K)
    cache_max_entries: int = _setting(
        0, "Answers kept per worker for repeated images (LRU, in memory); 0 = no response cache.", low=0, high=10**7
    )
    cache_max_bytes: int = _setting(
        64 * 1024 * 1024,
        "... and at most this many bytes of them per worker (estimated: answers, keys, bookkeeping).",
        low=64 * 1024,
        high=2**40,
    )

    header_timeout_s: float = _setting(
        10.0,
        "Seconds from a connection's first byte (or its opening) to the end of the request header; 408 after.",
        low=0.5,
        high=600,
    )
    body_timeout_s: float = _setting(
        30.0, "Seconds a request body may send nothing; 408 after, and the partial body is freed.", low=0.5, high=3600
    )
    keepalive_timeout_s: float = _setting(
        75.0,
        "Seconds an idle keep-alive connection stays open; keep it above the idle timeout of the load balancer "
        "or ingress in front (60 s for AWS ALB and ingress-nginx; over 600 s behind Google Cloud's).",
        low=1,
        high=3600,
    )
    max_connections: int = _setting(
        128,
        "Concurrent connections per worker; 503 beyond it. Bounds memory: each may hold up to max_body_bytes.",
        low=1,
        high=65536,
    )
    max_header_bytes: int = _setting(
        16 * 1024, "Largest request line + headers in bytes (431 above).", low=1024, high=1024 * 1024
    )
    api_keys_file: str = _setting(
        "", "API keys: a file with one key per line, or a directory of files (a mounted Secret); empty = no auth."
    )
    metrics_port: int = _setting(
        0, "A second port that serves only /metrics; 0 = /metrics on the main port.", low=0, high=65535
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))
        if self.runtime == "openvino" and self.device == "cuda":
            raise SettingsError(
                "runtime=openvino runs on the CPU; with device=cuda use runtime torch (or auto), or set device=cpu"
            )
        if self.max_images >= self.max_queue:
            raise SettingsError(
                f"max_images={self.max_images} is not below max_queue={self.max_queue}: one request could "
                "fill the whole queue; lower max_images or raise max_queue"
            )
        if self.metrics_port == self.port:
            raise SettingsError(f"metrics_port={self.metrics_port} is the main port; use another port, or 0")


def _check(f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    if meta["choices"] is not None and value not in meta["choices"]:
        raise SettingsError(f"{f.name}={value!r} is not accepted; use one of: {', '.join(meta['choices'])}")
    low, high = meta["low"], meta["high"]
    if low is not None and not (low <= value <= high):
        raise SettingsError(f"{f.name}={value!r} is out of range; accepted: {low:g} to {high:g}")


def _coerce(f: dataclasses.Field, raw: Any, source: str) -> Any:
    """Turn a YAML or environment value into the field's type, or say which key is wrong."""
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str}[f.type]
    try:
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if isinstance(raw, (dict, list)):
            raise ValueError
        return "" if raw is None else str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{f.name} from {source}: {raw!r} is not a valid {kind.__name__}") from None


def load_settings(environ: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> Settings:
    """Build Settings from defaults, then the YAML file, then VISIONSERVE_* variables."""
    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}

    path = config_file if config_file is not None else environ.get(CONFIG_FILE_ENV)
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise SettingsError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"config file {path} must hold a mapping of settings")
        for key, raw in loaded.items():
            if key not in fields:
                raise SettingsError(f"unknown key {key!r} in {path}; accepted: {', '.join(fields)}")
            values[key] = _coerce(fields[key], raw, str(path))

    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in fields:
            raise SettingsError(
                f"unknown variable {name}; accepted: " + ", ".join(ENV_PREFIX + k.upper() for k in fields)
            )
        values[key] = _coerce(fields[key], raw, name)
    return Settings(**values)


def settings_reference() -> list[tuple[str, Any, str]]:
    """(key, default, description) for every setting, for docs and the chart."""
    return [(f.name, f.default, f.metadata["doc"]) for f in dataclasses.fields(Settings)]
