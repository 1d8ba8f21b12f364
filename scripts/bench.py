"""Benchmark visionserve: the CPU, in-process ceilings, and the real server for runtime openvino and torch.

Run with `make bench` (or `.venv/bin/python scripts/bench.py --duration 10`). Everything stays on 127.0.0.1;
every loop is bounded by time or count; only the servers started here are stopped, by their own PID. The load
clients run on the same machine as the server and share its CPUs. Results go to .bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchlib.ceilings import measure_runtime
from benchlib.load import JPEG_QUALITY, PHOTO_NAMES, PHOTO_SIZE, sample_photos
from benchlib.machine import cpu_line, describe_cpu
from benchlib.procfs import loadavg, wait_for_idle
from benchlib.repeated import MAX_REPEAT_CLIENTS, REPEAT_CLIENTS, repeated_line, run_repeated
from benchlib.report import markdown, noisy_phases, phases, target_lines
from benchlib.servers import LevelProbe, bench_server, timed_server
from benchlib.soak import MAX_SOAK_REQUESTS, MEMORY_NOTE, SOAK_CONCURRENCY, SOAK_REQUESTS
from benchlib.storm import MAX_STORM_CLIENTS, STORM_CLIENTS
from benchlib.storm import METHOD as STORM_METHOD
from benchlib.targets import check_targets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchlib imports the service (app/) and its test harness (tests/) when it uses them

RUNTIMES = ("openvino", "torch")
DEFAULT_LEVELS = (1, 16, 64)
BASE_SETTINGS: dict[str, object] = {
    "weights": "random",
    "cifar_head": "random",  # both heads load, as a trained deployment serves them
    "workers": 1,
}  # everything else: the service's own defaults, so the figures describe what users get


def _csv(kind: type) -> Any:
    return lambda text: [kind(value) for value in text.split(",") if value]


def _bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; accepted: {low} to {high}")
        return value

    return parse


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. preprocess_threads=1")
    return key, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per load level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level")
    parser.add_argument("--levels", type=_csv(int), default=list(DEFAULT_LEVELS), help="concurrencies, e.g. 1,16,64")
    parser.add_argument("--runtimes", type=_csv(str), default=list(RUNTIMES), help="e.g. openvino,torch")
    parser.add_argument("--in-process-seconds", type=float, default=20.0, help="time per runtime in process")
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a service setting for the servers and the in-process classifiers (repeatable)",
    )
    parser.add_argument("--no-retry-after", action="store_true", help="on 503 retry at once, not after Retry-After")
    parser.add_argument(
        "--storm-clients",
        type=_bounded(0, MAX_STORM_CLIENTS),
        default=STORM_CLIENTS,
        help="retry storm against the OpenVINO server: clients that retry a 503 at once (0 skips it)",
    )
    parser.add_argument(
        "--soak-requests",
        type=_bounded(0, MAX_SOAK_REQUESTS),
        default=SOAK_REQUESTS,
        help=f"soak: requests at c={SOAK_CONCURRENCY} against the OpenVINO server, worker memory before and after "
        "(0 skips it)",
    )
    parser.add_argument(
        "--repeat-clients",
        type=_bounded(0, MAX_REPEAT_CLIENTS),
        default=REPEAT_CLIENTS,
        help="repeated images: clients sending the same photos to a server with the response cache off, then on "
        "(0 skips it)",
    )
    parser.add_argument(
        "--wait-idle", type=float, default=0.0, help="before each phase, wait up to this many seconds for an idle CPU"
    )
    parser.add_argument("--json", type=Path, default=Path(".bench/results.json"), help="where to write the results")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target misses")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.runtimes) - set(RUNTIMES))
    if unknown:
        parser.error(f"--runtimes: {', '.join(unknown)} unknown; use {', '.join(RUNTIMES)}")
    return args


def print_header(args: argparse.Namespace, cpu: dict[str, Any], photos: Sequence[bytes]) -> None:
    print(f"# visionserve benchmark, load average {loadavg()}")
    print(json.dumps(cpu))
    print(
        f"photos: {', '.join(PHOTO_NAMES)} at {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG q{JPEG_QUALITY}, "
        f"{min(map(len, photos))}-{max(map(len, photos))} bytes"
    )
    on_503 = "retry at once" if args.no_retry_after else "sleep Retry-After"
    print(
        f"clients: closed loop on this machine (they share its CPUs with the server), one keep-alive connection "
        f"per thread, {on_503} on 503; warm-up {args.warmup:g}s + {args.duration:g}s measured per level {args.levels}"
    )
    if "openvino" in args.runtimes:
        storm = f"a retry storm of {args.storm_clients} clients that retry a 503 at once" if args.storm_clients else ""
        soak = f"a soak of {args.soak_requests} requests at c={SOAK_CONCURRENCY}" if args.soak_requests else ""
        if storm or soak:
            print(f"then, against the OpenVINO server: {' and '.join(filter(None, (storm, soak)))}")
    if args.repeat_clients and args.runtimes:
        print(
            f"then repeated images at c={args.repeat_clients} against two servers of runtime {repeated_runtime(args)}: "
            "the response cache off, then on"
        )


def settings_for(args: argparse.Namespace, runtime: str, model_cache: str) -> dict[str, object]:
    """One runtime's server settings: the base, the runtime, the model cache, then every --set."""
    return {**BASE_SETTINGS, "runtime": runtime, "model_cache": model_cache, **dict(args.set)}


def run_in_process(args: argparse.Namespace, photos: Sequence[bytes]) -> dict[str, dict[str, Any]]:
    """Each runtime's ceilings, built from the settings its server gets (without a model cache)."""
    results = {}
    for runtime in args.runtimes:
        print(f"\n## in process, no HTTP: {runtime} ({args.in_process_seconds:g}s)", flush=True)
        wait_for_idle(args.wait_idle)
        results[runtime] = measure_runtime(settings_for(args, runtime, "off"), photos, args.in_process_seconds)
        print(json.dumps(results[runtime]), flush=True)
    return results


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """How every load phase measures: its windows, the clients' answer to 503, the wait for an idle CPU."""
    return {
        "duration": args.duration,
        "warmup": args.warmup,
        "honor_retry_after": not args.no_retry_after,
        "wait_idle": args.wait_idle,
    }


def repeated_runtime(args: argparse.Namespace) -> str:
    """The runtime the repeated-image workload runs on: OpenVINO, the default, when it is benchmarked."""
    return "openvino" if "openvino" in args.runtimes else args.runtimes[0]


def run_servers(args: argparse.Namespace, photos: Sequence[bytes]) -> dict[str, dict[str, Any]]:
    """Each runtime's server, then the repeated-image workload (its own two servers, cache off and on); the model
    cache is a temporary folder, so the first start is a cold one."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="visionserve-bench-cache-") as cache:
        for runtime in args.runtimes:
            results[runtime] = bench_server(
                runtime,
                settings_for(args, runtime, cache),
                photos,
                args.levels,
                **load_options(args),
                storm_clients=args.storm_clients if runtime == "openvino" else 0,
                soak_requests=args.soak_requests if runtime == "openvino" else 0,
            )
        if args.repeat_clients and args.runtimes:
            runtime = repeated_runtime(args)
            print(f"\n## repeated images, runtime {runtime}: response cache off, then on", flush=True)
            repeated = run_repeated(
                timed_server,
                settings_for(args, runtime, cache),
                photos,
                args.repeat_clients,
                **load_options(args),
                probe=LevelProbe,
            )
            results[runtime]["repeated"] = repeated
            print(repeated_line(repeated), flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    python = Path(sys.executable)
    shown = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
    command = shlex.join([str(shown), "scripts/bench.py", *(sys.argv[1:] if argv is None else argv)])
    cpu = describe_cpu()
    photos = sample_photos()
    print_header(args, cpu, photos)
    in_process = run_in_process(args, photos)
    servers = run_servers(args, photos)

    openvino = in_process.get("openvino", {})
    reference_c1_ms = openvino.get("batch1_total_ms", {}).get("median")
    targets = check_targets(
        levels={runtime: server["levels"] for runtime, server in servers.items()},
        ceiling_batch8_img_s=openvino.get("batch8_img_s"),
        reference_c1_ms=reference_c1_ms,
        amx=cpu["amx"],
        pss_mb=servers.get("openvino", {}).get("pss_mb"),
        ready_warm_s={runtime: server["start"]["warm"]["ready_s"] for runtime, server in servers.items()},
        storm=servers.get("openvino", {}).get("storm"),
        soak=servers.get("openvino", {}).get("soak"),
    )
    table = markdown(command, cpu_line(cpu, openvino.get("precision")), in_process, servers)
    noisy = noisy_phases(phases(in_process, servers))
    print("\n" + table)
    print("reference for c=1: the in-process batch 1, decode to answer (median); rates use median iterations")
    if servers.get("openvino", {}).get("storm"):
        print(STORM_METHOD)
    if servers.get("openvino", {}).get("soak"):
        print(MEMORY_NOTE)
    for server in servers.values():
        if server.get("repeated"):
            print(server["repeated"]["method"])
    print()
    print("\n".join(target_lines(targets)))
    if noisy:
        print(f"\nWARNING: other processes used CPU during: {', '.join(noisy)}; those numbers are noisy.")
    print(f"load average at the end: {loadavg()}")

    results = {
        "command": command,
        "machine": {"cpu": cpu, "python": sys.version.split()[0], "loadavg_end": loadavg()},
        "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "in_process": in_process,
        "reference_c1_ms": reference_c1_ms,
        "servers": servers,
        "targets": targets,
        "noisy_phases": noisy,
        "markdown": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"results written to {args.json}")
    return 1 if args.strict and any(t["result"] == "MISS" for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
