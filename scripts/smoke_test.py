"""Post-deploy smoke test: alive, ready, describes its model, classifies a picture with every head, exports metrics.

python scripts/smoke_test.py --url http://visionserve.ml.svc:80     # also what `helm test` runs
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import requests
from PIL import Image


def sample_jpeg() -> bytes:
    """A small synthetic picture, so the check needs no files."""
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def wait_ready(session: requests.Session, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = session.get(f"{url}/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(2)
    raise RuntimeError(f"{url}/readyz not ready after {timeout_s:.0f}s: {last}")


REQUIRED_METRICS = ("visionserve_requests_total", "visionserve_ready", "visionserve_inference_seconds")


def _predict(session: requests.Session, url: str, head: str) -> str:
    answer = session.post(
        f"{url}/v1/predict?heads={head}&top_k=1", data=sample_jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=60
    )
    if answer.status_code != 200:
        raise RuntimeError(f"POST /v1/predict?heads={head} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()["predictions"][0]["heads"][head][0]["label"]


def check(url: str, timeout_s: float) -> list[str]:
    """Liveness, readiness, the model, one prediction per available head, metrics; raise on the first failure."""
    report: list[str] = []
    with requests.Session() as session:
        wait_ready(session, url, timeout_s)  # a starting pod does not listen until its model is warm
        report.append("PASS /readyz ready")
        session.get(f"{url}/healthz", timeout=10).raise_for_status()
        report.append("PASS /healthz answers")
        models = session.get(f"{url}/v1/models", timeout=10)
        models.raise_for_status()
        described = models.json()
        model = described["model"]
        warning = " (RANDOM weights: predictions are meaningless)" if model["random_weights"] else ""
        report.append(f"PASS /v1/models: {model['name']} v{model['version']} on {model['device']}{warning}")
        for head, info in described["heads"].items():
            if not info["available"]:
                report.append(f"SKIP {head}: not loaded on this server ({info['weights']['source']})")
                continue
            report.append(f"PASS predict {head}: top-1 {_predict(session, url, head)!r}")
        metrics = session.get(f"{url}/metrics", timeout=10).text
        missing = [name for name in REQUIRED_METRICS if name not in metrics]
        if missing:
            raise RuntimeError(f"/metrics lacks {', '.join(missing)}")
        report.append("PASS /metrics exports " + ", ".join(REQUIRED_METRICS))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="base URL of the service")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    try:
        print("\n".join(check(args.url.rstrip("/"), args.timeout)))
    except (RuntimeError, requests.RequestException, KeyError, ValueError) as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
