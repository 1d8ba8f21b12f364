"""Attack a real visionserve as hostile clients would, and print what each attack got: status, seconds, side effects.

Run with `make attacks` (or `.venv/bin/python scripts/attack_table.py --only slow-header,huge-integer`). It starts its
own servers on 127.0.0.1 with explicitly random weights (the service's own defaults for everything else, unless
`--set` changes them), stops them by their own PID, and prints a Markdown table; `--json` writes the outcomes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from benchlib.attacks import (
    Outcome,
    Target,
    gigapixel_pngs,
    huge_integer,
    hung_forward,
    idle_connections,
    json_of_tiny_instances,
    repeated_parameter,
    slow_header,
    stalled_body,
    stalled_uploads,
)
from benchlib.load import LoadClient, sample_photos
from benchlib.procfs import children_of

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test harness starts the servers

SERVER_SETTINGS: dict[str, object] = {"weights": "random", "cifar_head": "random", "workers": 1}
HUNG_SETTINGS: dict[str, object] = {"watchdog_forward_s": 5, "request_timeout_s": 3}  # minutes would be honest too
STORM_SECONDS = 15.0

Attack = Callable[[Target, bytes], Outcome]
ATTACKS: dict[str, tuple[str, Attack]] = {
    "slow-header": ("request header sent 1 byte/s", lambda t, _: slow_header(t)),
    "stalled-body": ("body stalls after 1 KiB of 1 MiB", lambda t, _: stalled_body(t)),
    "idle-connections": ("200 connections that send nothing", lambda t, _: idle_connections(t)),
    "stalled-uploads": ("20 uploads of 10 MiB stalled after 5 MiB", lambda t, _: stalled_uploads(t)),
    "gigapixel-32": ("32 blank 6260x6260 PNGs in one request (1.25 Gpx)", lambda t, _: gigapixel_pngs(t, 32)),
    "gigapixel-16": ("16 blank 6260x6260 PNGs (within max_images)", lambda t, _: gigapixel_pngs(t, 16)),
    "json-10mib": ("10 MiB JSON body of tiny instances", lambda t, _: json_of_tiny_instances(t)),
    "huge-integer": ("top_k of 5,000 digits in JSON", lambda t, _: huge_integer(t)),
    "repeated-parameter": ("?top_k=1&top_k=5", repeated_parameter),
}
SPECIAL = {
    "retry-storm": "64 clients retrying a 503 at once, against 16 that honour Retry-After",
    "hung-forward": "a forward pass that never returns (a test runtime that hangs)",
}
NAMES = [*ATTACKS, *SPECIAL]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(NAMES), help=f"comma-separated, of: {', '.join(NAMES)}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a server setting")
    parser.add_argument("--json", type=Path, help="where to write the outcomes")
    args = parser.parse_args(argv)
    args.only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(args.only) - set(NAMES))
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")
    pairs = [text.partition("=") for text in args.set]
    if any(not sep for _, sep, _ in pairs):
        parser.error("--set takes KEY=VALUE")
    args.settings = {key: value for key, _, value in pairs}
    return args


def _target(server: object) -> Target:
    master = server.process.pid  # type: ignore[attr-defined]
    return Target(server.port, lambda: children_of(master))  # type: ignore[attr-defined]


def retry_storm(server: object, photos: list[bytes]) -> Outcome:
    """Accepted throughput and p99 of 64 impatient clients, against 16 polite ones on the same server."""
    client_polite = LoadClient(server.url, photos, honor_retry_after=True)  # type: ignore[attr-defined]
    client_storm = LoadClient(server.url, photos, honor_retry_after=False)  # type: ignore[attr-defined]
    polite = client_polite.run(16, STORM_SECONDS, 3.0, _NoProbe())
    storm = client_storm.run(64, STORM_SECONDS, 3.0, _NoProbe())
    ratio = storm["throughput_img_s"] / polite["throughput_img_s"] if polite["throughput_img_s"] else None
    notes = {
        "c16_img_s": polite["throughput_img_s"],
        "storm_img_s": storm["throughput_img_s"],
        "storm_vs_c16": None if ratio is None else round(ratio, 2),
        "storm_p99_ms": storm["p99_ms"],
        "storm_503s": storm["shed"],
        "errors": storm["errors"],
    }
    return Outcome(f"200 x {storm['ok']}, 503 x {storm['shed']}", STORM_SECONDS, notes)


class _NoProbe:
    def open(self) -> None:
        pass

    def close(self) -> dict[str, object]:
        return {}


def run(args: argparse.Namespace) -> dict[str, Outcome]:
    from tests.harness.faulty_app import FAULT_ENV, SPEC
    from tests.harness.local_server import LocalServer

    settings = {**SERVER_SETTINGS, **args.settings}
    photos = sample_photos()
    outcomes: dict[str, Outcome] = {}
    plain = [name for name in args.only if name != "hung-forward"]
    if plain:
        with LocalServer(settings) as server:
            for name in plain:
                print(f"  {name} ...", file=sys.stderr, flush=True)
                if name == "retry-storm":
                    outcomes[name] = retry_storm(server, photos)
                else:
                    outcomes[name] = ATTACKS[name][1](_target(server), photos[0])
    if "hung-forward" in args.only:
        print("  hung-forward ...", file=sys.stderr, flush=True)
        hung = {**settings, **HUNG_SETTINGS}
        with LocalServer(hung, app_spec=SPEC, extra_env={FAULT_ENV: "sleep:3600"}) as server:
            outcomes["hung-forward"] = hung_forward(_target(server), photos[0])
    return outcomes


def table(outcomes: dict[str, Outcome]) -> str:
    """The outcomes as Markdown, in the order of NAMES."""
    lines = ["| attack | what the attacker got | after (s) | measured meanwhile |", "|---|---|---|---|"]
    for name in NAMES:
        if name in outcomes:
            what = SPECIAL.get(name) or ATTACKS[name][0]
            outcome = outcomes[name]
            notes = ", ".join(f"{key} {value}" for key, value in outcome.notes.items())
            lines.append(f"| {what} | {outcome.status} | {outcome.seconds} | {notes} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes = run(args)
    print(table(outcomes))
    if "hung-forward" in outcomes:
        print(f"\nhung-forward ran with {HUNG_SETTINGS} (the defaults are 60 s and 30 s).")
    if args.json:
        args.json.write_text(json.dumps({name: asdict(o) for name, o in outcomes.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
