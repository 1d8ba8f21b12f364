"""The CPU the benchmark ran on: model, cores, the vector and matrix extensions that decide the precision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """The first processor's model name and flags."""
    model, flags = "unknown", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def describe_cpu() -> dict[str, Any]:
    """Model, cores, quota, the flags that matter, and what OpenVINO reports it can optimise for."""
    import openvino as ov

    from app.threads import cpu_quota

    model, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    return {
        "model": model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_quota": cpu_quota(),
        "flags": {name: name in flags for name in FLAGS},
        "amx": "amx_tile" in flags,
        "openvino_capabilities": list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
    }


def cpu_line(cpu: dict[str, Any], openvino_precision: str | None) -> str:
    """One line for the report and the README."""
    flags = ", ".join(name for name, present in cpu["flags"].items() if present) or "none of " + ", ".join(FLAGS)
    return (
        f"CPU: {cpu['model']}, {cpu['cores']} cores ({cpu['usable_cores']} usable, quota {cpu['cpu_quota']:g}); "
        f"flags: {flags}; {'AMX' if cpu['amx'] else 'no AMX'}; OpenVINO capabilities: "
        f"{', '.join(cpu['openvino_capabilities'])}; OpenVINO precision chosen: {openvino_precision or 'not run'}"
    )
