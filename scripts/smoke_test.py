"""Post-deploy smoke test: the service is ready, describes its model, and classifies one picture.

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


def check(url: str, timeout_s: float) -> str:
    """Raise with a clear message on the first thing that is wrong; return a one-line summary."""
    with requests.Session() as session:
        wait_ready(session, url, timeout_s)
        models = session.get(f"{url}/v1/models", timeout=10)
        models.raise_for_status()
        model = models.json()["model"]
        answer = session.post(
            f"{url}/v1/predict?top_k=1", data=sample_jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=60
        )
        if answer.status_code != 200:
            raise RuntimeError(f"POST /v1/predict answered {answer.status_code}: {answer.text[:300]}")
        best = answer.json()["predictions"][0]["heads"]["imagenet"][0]
    warning = " (RANDOM weights)" if model["random_weights"] else ""
    return f"ok: {model['name']} v{model['version']} on {model['device']}{warning}; top-1 {best['label']!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="base URL of the service")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    try:
        print(check(args.url.rstrip("/"), args.timeout))
    except (RuntimeError, requests.RequestException, KeyError, ValueError) as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
