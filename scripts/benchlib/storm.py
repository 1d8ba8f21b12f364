"""The retry storm: many clients that retry a 503 at once, and what one rejection costs the server in CPU."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .load import LoadClient, Probe

STORM_CLIENTS = 64
MAX_STORM_CLIENTS = 512
STORM_REFERENCE_CONCURRENCY = 16  # the level whose windows give the cost of accepted images
REJECTION_GROUP = "event_loop"  # the only thread a rejection runs on: refused before any decoding or batching
METHOD = (
    "rejection CPU-ms: the server's CPU per thread group (from /proc) over two windows, the c=16 level and the storm, "
    "each CPU = a x images accepted + r x requests refused (both counted by the server's /metrics); solved for r. "
    "The figure is the event loop's r, the only thread a rejection runs on (refused before any decode or batch); "
    "the whole-server r also carries the difference in inference cost per image between the two windows"
)


def rejection_cpu_ms(reference: Mapping[str, Any], storm: Mapping[str, Any]) -> dict[str, float | None]:
    """CPU-ms one rejection costs, by thread group, from two measured windows (each a load level's result).

    Each window's CPU of a group is a * images + r * rejections; two windows give two equations. None where the
    windows cannot tell r apart (the storm refused no more per accepted image than the reference did).
    """
    n1, r1 = reference["server_ms"]["images"], reference["server_ms"]["rejections"]
    n2, r2 = storm["server_ms"]["images"], storm["server_ms"]["rejections"]
    determinant = n1 * r2 - n2 * r1
    if not determinant > 0:
        return dict.fromkeys(storm["cpu_ms"])
    return {
        group: round((n1 * storm["cpu_ms"][group] - n2 * reference["cpu_ms"][group]) / determinant, 3)
        for group in storm["cpu_ms"]
    }


def reference_level(levels: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The load level whose accepted images price the storm's, or None where it did not run."""
    return next((lv for lv in levels if lv["concurrency"] == STORM_REFERENCE_CONCURRENCY), None)


def run_storm(
    client: LoadClient,
    clients: int,
    *,
    duration: float,
    warmup: float,
    probe: Probe,
    levels: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """`clients` closed-loop clients that retry a 503 at once (the client must not honour Retry-After)."""
    assert not client.honor_retry_after, "a retry storm retries at once"
    storm = client.run(clients, duration, warmup, probe)
    reference = reference_level(levels)
    cost = rejection_cpu_ms(reference, storm) if reference else None
    return {
        **storm,
        "rejection_cpu_ms": None if cost is None else cost[REJECTION_GROUP],
        "rejection_cpu_ms_by_group": cost,
        "rejection_method": METHOD,
    }


def storm_line(storm: Mapping[str, Any]) -> str:
    """The storm, as printed while the benchmark runs."""
    cost = storm["rejection_cpu_ms_by_group"] or {}
    return (
        f"  retry storm, {storm['concurrency']} clients retrying 503 at once: {storm['throughput_img_s']:.2f} "
        f"accepted img/s  p50 {storm['p50_ms']} p95 {storm['p95_ms']} p99 {storm['p99_ms']} ms  "
        f"503s {storm['shed']} ({storm['shed_pct']}%)  errors {storm['errors']}\n"
        f"         one rejection costs the server {storm['rejection_cpu_ms']} CPU-ms (event loop; whole server "
        f"{cost.get('total')})   machine {storm['cpu']}\n"
        f"         {METHOD}"
    )
