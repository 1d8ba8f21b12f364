"""Post-deploy smoke test: alive, ready (also by the Open Inference Protocol's probe), describes its model, classifies
a picture with every head, exports metrics.

visionserve smoke-test --url http://visionserve.ml.svc:80     # also what `helm test` runs
"""

from __future__ import annotations

import argparse
import sys
import time

from app.cli.client import add_api_key_arguments, api_key, base_url, request, request_json
from app.cli.exits import FAILED, OK, USAGE, CommandError
from app.cli.sample import sample_jpeg

EXITS = f"""exit codes:
  {OK}  every check passed
  {FAILED}  a check failed: `smoke test FAILED: ...` on stderr
  {USAGE}  usage error"""
# Probes checked after /readyz: liveness, and the Open Inference Protocol's readiness (200 ready, 400 not).
PROBES = {"/healthz": "answers", "/v2/health/ready": "ready (Open Inference Protocol V2)"}
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
        "--metrics-url",
        type=base_url,
        help="base URL of the service's metrics port, when it has one (default: --url)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for readiness (default %(default)g)"
    )
    add_api_key_arguments(parser)
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


def _predict(url: str, head: str, key: str) -> str:
    path = f"/v1/predict?heads={head}&top_k=1"
    try:
        answer = request_json(f"{url}{path}", timeout=60, body=sample_jpeg(), content_type="image/jpeg", api_key=key)
    except CommandError as exc:
        raise RuntimeError(f"POST {path}: {exc}") from None
    return answer["predictions"][0]["heads"][head][0]["label"]


def _refused_without_key(url: str) -> str:
    """With a key given, the service must refuse a request that has none."""
    try:
        request(f"{url}/v1/models", timeout=10)
    except CommandError as exc:
        if str(exc).startswith("401 "):
            return "/v1/models refuses a request without an API key (401)"
        raise
    raise RuntimeError("/v1/models answered a request without an API key: the service does not require keys")


def check(url: str, timeout_s: float, key: str = "", metrics_url: str | None = None) -> list[str]:
    """Liveness, readiness (ours and OIP V2's), the model, one prediction per available head, metrics; raise on the
    first failure.

    The probes are checked without the key (the kubelet has none); the rest with it, when given."""
    report: list[str] = []
    wait_ready(url, timeout_s)  # a starting pod does not listen until its model is warm
    report.append("PASS /readyz ready")
    for path, passed in PROBES.items():  # without a key, as the kubelet asks
        try:
            request(f"{url}{path}", timeout=10)
        except CommandError as exc:
            raise RuntimeError(f"{path}: {exc}") from None
        report.append(f"PASS {path} {passed}")
    if key:
        report.append(f"PASS {_refused_without_key(url)}")
    described = request_json(f"{url}/v1/models", timeout=10, api_key=key)
    model = described["model"]
    warning = " (RANDOM weights: predictions are meaningless)" if model["random_weights"] else ""
    runtime = f"{model['runtime']} {model['precision']} on {model['device']}"
    report.append(f"PASS /v1/models: {model['name']} v{model['version']}, {runtime}{warning}")
    for head, info in described["heads"].items():
        if not info["available"]:
            report.append(f"SKIP {head}: not loaded on this server ({info['weights']['source']})")
            continue
        report.append(f"PASS predict {head}: top-1 {_predict(url, head, key)!r}")
    metrics = request(f"{metrics_url or url}/metrics", timeout=10, api_key=key).decode(errors="replace")
    missing = [name for name in REQUIRED_METRICS if name not in metrics]
    if missing:
        raise RuntimeError(f"/metrics lacks {', '.join(missing)}")
    report.append("PASS /metrics exports " + ", ".join(REQUIRED_METRICS))
    return report


def run(args: argparse.Namespace) -> int:
    key = api_key(args)  # a missing key file is a usage error, before any check
    try:
        print("\n".join(check(args.url, args.timeout, key, args.metrics_url)))
    except (CommandError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return FAILED
    return OK
