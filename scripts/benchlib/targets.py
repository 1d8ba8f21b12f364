"""The issue's targets, each a ratio measured in this run against its limit: PASS, MISS, or SKIP when not measured."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}
PSS_LIMIT_MB = 900.0
P99_LIMIT_MS = 1000.0
STORM_P99_LIMIT_MS = 2000.0
SOAK_GROWTH_LIMIT_MB = 50.0


def target(name: str, numerator: float | None, denominator: float | None, *, op: str, limit: float, unit: str) -> dict:
    """numerator / denominator compared with `limit`; the numbers behind the ratio are kept for the report."""
    if numerator is None or denominator is None or denominator == 0:
        return {"target": name, "ratio": None, "op": op, "limit": limit, "numbers": "not measured", "result": "SKIP"}
    ratio = round(numerator / denominator, 3)  # judged as printed: the verdict never contradicts the figure
    return {
        "target": name,
        "ratio": ratio,
        "op": op,
        "limit": limit,
        "numbers": f"{numerator:g} / {denominator:g} {unit}",
        "result": "PASS" if COMPARE[op](ratio, limit) else "MISS",
    }


def level_value(levels: Mapping[str, Sequence[dict]], runtime: str, concurrency: int, key: str) -> float | None:
    """One figure of one runtime's load level, or None where that level did not run."""
    found = [level for level in levels.get(runtime, ()) if level["concurrency"] == concurrency]
    return found[0][key] if found else None


def check_targets(
    *,
    levels: Mapping[str, Sequence[dict[str, Any]]],
    ceiling_batch8_img_s: float | None,
    reference_c1_ms: float | None,
    amx: bool,
    pss_mb: float | None,
    ready_warm_s: Mapping[str, float],
    storm: Mapping[str, Any] | None = None,
    soak: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Every target of the issue; `levels` holds each runtime's load levels, `storm` and `soak` the OpenVINO
    server's retry storm and soak (None where not run), the rest the run's references."""
    ov16 = level_value(levels, "openvino", 16, "throughput_img_s")
    ov64 = {key: level_value(levels, "openvino", 64, key) for key in ("throughput_img_s", "p99_ms")}
    torch16 = level_value(levels, "torch", 16, "throughput_img_s")
    ov1 = level_value(levels, "openvino", 1, "p50_ms")
    return [
        target(
            "c=16 openvino throughput / in-process OpenVINO batch-8 ceiling",
            ov16,
            ceiling_batch8_img_s,
            op=">=",
            limit=0.7,
            unit="img/s",
        ),
        target(
            f"c=16 openvino throughput / torch-runtime throughput ({'AMX' if amx else 'no AMX'})",
            ov16,
            torch16,
            op=">=",
            limit=4.0 if amx else 1.5,
            unit="img/s",
        ),
        target(
            "c=1 openvino p50 / in-process decode + preprocess + batch-1 forward",
            ov1,
            reference_c1_ms,
            op="<=",
            limit=1.3,
            unit="ms",
        ),
        target(
            "c=64 openvino throughput / its throughput at c=16",
            ov64["throughput_img_s"],
            ov16,
            op=">=",
            limit=0.9,
            unit="img/s",
        ),
        target("c=64 openvino accepted p99 / 1 s", ov64["p99_ms"], P99_LIMIT_MS, op="<", limit=1.0, unit="ms"),
        target("openvino whole-server PSS under load / 900 MB", pss_mb, PSS_LIMIT_MB, op="<=", limit=1.0, unit="MB"),
        target(
            "time to ready with a warm model cache: openvino / torch",
            ready_warm_s.get("openvino"),
            ready_warm_s.get("torch"),
            op="<=",
            limit=2.0,
            unit="s",
        ),
        target(
            "retry storm (clients retry 503 at once): openvino accepted throughput / its throughput at c=16",
            storm["throughput_img_s"] if storm else None,
            ov16,
            op=">=",
            limit=0.8,
            unit="img/s",
        ),
        target(
            "retry storm: openvino accepted p99 / 2 s",
            storm["p99_ms"] if storm else None,
            STORM_P99_LIMIT_MS,
            op="<",
            limit=1.0,
            unit="ms",
        ),
        target(
            "soak: openvino worker memory growth (the larger of RSS and anonymous RSS) / 50 MB",
            soak["growth"]["mb"] if soak else None,
            SOAK_GROWTH_LIMIT_MB,
            op="<",
            limit=1.0,
            unit="MB",
        ),
    ]
