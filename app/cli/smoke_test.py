"""Post-deploy smoke test: alive, ready, describes its model, classifies a picture with every head, exports metrics.

visionserve smoke-test --url http://visionserve.ml.svc:80     # also what `helm test` runs
"""

from __future__ import annotations

import argparse
import sys
import time

from app.cli.client import base_url, request, request_json
from app.cli.exits import FAILED, OK, USAGE, CommandError
from app.cli.sample import sample_jpeg

EXITS = f"""exit codes:
  {OK}  every check passed
  {FAILED}  a check failed: `smoke test FAILED: ...` on stderr
  {USAGE}  usage error"""
REQUIRED_METRICS = ("visionserve_requests_total", "visionserve_ready", "visionserve_inference_seconds")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "smoke-test",
        help="check a running service end to end (what `helm test` runs)",
        description=__doc__,
        epilog=EXITS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", type=base_url, default="http://127.0.0.1:8080", help="base URL of the service (default %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for readiness (default %(default)g)"
    )
    parser.set_defaults(run=run)


def wait_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            request(f"{url}/readyz", timeout=5)
            return
        except CommandError as exc:
            last = str(exc)
        time.sleep(2)
    raise RuntimeError(f"{url}/readyz not ready after {timeout_s:.0f}s: {last}")


def _predict(url: str, head: str) -> str:
    path = f"/v1/predict?heads={head}&top_k=1"
    try:
        answer = request_json(f"{url}{path}", timeout=60, body=sample_jpeg(), content_type="image/jpeg")
    except CommandError as exc:
        raise RuntimeError(f"POST {path}: {exc}") from None
    return answer["predictions"][0]["heads"][head][0]["label"]


def check(url: str, timeout_s: float) -> list[str]:
    """Liveness, readiness, the model, one prediction per available head, metrics; raise on the first failure."""
    report: list[str] = []
    wait_ready(url, timeout_s)  # a starting pod does not listen until its model is warm
    report.append("PASS /readyz ready")
    request(f"{url}/healthz", timeout=10)
    report.append("PASS /healthz answers")
    described = request_json(f"{url}/v1/models", timeout=10)
    model = described["model"]
    warning = " (RANDOM weights: predictions are meaningless)" if model["random_weights"] else ""
    runtime = f"{model['runtime']} {model['precision']} on {model['device']}"
    report.append(f"PASS /v1/models: {model['name']} v{model['version']}, {runtime}{warning}")
    for head, info in described["heads"].items():
        if not info["available"]:
            report.append(f"SKIP {head}: not loaded on this server ({info['weights']['source']})")
            continue
        report.append(f"PASS predict {head}: top-1 {_predict(url, head)!r}")
    metrics = request(f"{url}/metrics", timeout=10).decode(errors="replace")
    missing = [name for name in REQUIRED_METRICS if name not in metrics]
    if missing:
        raise RuntimeError(f"/metrics lacks {', '.join(missing)}")
    report.append("PASS /metrics exports " + ", ".join(REQUIRED_METRICS))
    return report


def run(args: argparse.Namespace) -> int:
    try:
        print("\n".join(check(args.url, args.timeout)))
    except (CommandError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return FAILED
    return OK
