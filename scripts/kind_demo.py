"""`make kind-demo`: the service on a local kind cluster, end to end, with the commands it runs printed.

Builds the image (docker, or podman where docker is missing), creates the kind cluster or reuses it, loads the
image into it, installs the chart with small values (charts/visionserve/ci/kind-demo-values.yaml: one pod of
0.5 CPU and 1.5 GiB requested, random weights chosen explicitly), waits for the rollout, port-forwards, runs
`visionserve smoke-test`, and prints how to reach the page. CI's kind job runs this same script, with its own
values layered on top (--values), an API key (--api-keys-secret), `helm test` and the metrics port (--ci-checks).

    python scripts/kind_demo.py               # needs docker or podman, kind, kubectl, helm
    python scripts/kind_demo.py --dry-run     # print the commands only (what the tests check)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = "charts/visionserve"
DEMO_VALUES = f"{CHART}/ci/kind-demo-values.yaml"
IMAGE_REPOSITORY, IMAGE_TAG = "localhost/visionserve", "kind"  # `localhost/`: the same name under docker and podman
LOCAL_PORT, METRICS_PORT = 8080, 9090
API_KEY_NAME = "demo"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", default="visionserve", help="kind cluster name (reused when it exists)")
    parser.add_argument("--namespace", default="visionserve", help="namespace of the release")
    parser.add_argument("--release", default="visionserve", help="Helm release name")
    parser.add_argument(
        "--engine", choices=("docker", "podman"), help="container engine (default: docker, else podman)"
    )
    parser.add_argument("--values", action="append", default=[], help="more values files, after the demo's own")
    parser.add_argument("--api-keys-secret", default="", help="create this API keys Secret; the smoke test uses it")
    parser.add_argument("--ci-checks", action="store_true", help="also `helm test` and the smoke test's metrics check")
    parser.add_argument("--port", type=int, default=LOCAL_PORT, help="local port of the port-forward")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return parser.parse_args(argv)


class Runner:
    """Runs (or, in a dry run, only prints) each command, echoed as `+ command` like `make` does."""

    def __init__(self, dry_run: bool, env: dict[str, str]) -> None:
        self.dry_run = dry_run
        self.env = env

    def run(self, *command: str, input_text: str | None = None, capture: bool = False) -> str:
        print("+ " + " ".join(command), flush=True)
        if self.dry_run:
            return ""
        done = subprocess.run(
            command, cwd=ROOT, env=self.env, input=input_text, text=True, check=True, capture_output=capture
        )
        return done.stdout if capture else ""

    def start(self, *command: str) -> subprocess.Popen | None:
        print("+ " + " ".join(command) + " &", flush=True)
        if self.dry_run:
            return None
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL)


def engine_of(args: argparse.Namespace) -> str:
    if args.engine:
        return args.engine
    return "docker" if shutil.which("docker") else "podman"


def missing_tools(engine: str) -> list[str]:
    return [tool for tool in (engine, "kind", "kubectl", "helm") if shutil.which(tool) is None]


def build_and_load(run: Runner, engine: str, cluster: str) -> None:
    """The image, without baked weights (the demo's values choose random ones), into the kind node."""
    image = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
    run.run(engine, "build", "--build-arg", "FETCH_WEIGHTS=false", "--tag", image, ".")
    clusters = run.run("kind", "get", "clusters", capture=True).split()
    if cluster not in clusters:
        run.run("kind", "create", "cluster", "--name", cluster, "--wait", "120s")
    if engine == "docker":
        run.run("kind", "load", "docker-image", image, "--name", cluster)
    else:  # kind loads a podman image from an archive
        archive = f"/tmp/visionserve-{IMAGE_TAG}.tar"
        run.run("podman", "save", "--output", archive, image)
        run.run("kind", "load", "image-archive", archive, "--name", cluster)


def api_key_secret(run: Runner, namespace: str, name: str) -> str:
    """The namespace and a Secret holding one fresh API key, applied (a rerun replaces the key); returns the key,
    which is never printed."""
    key = secrets.token_hex(32)
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {API_KEY_NAME: key},
        },
    ]
    run.run(
        "kubectl",
        "apply",
        "--filename",
        "-",
        input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    return key


def install(run: Runner, args: argparse.Namespace) -> None:
    values = [option for path in [DEMO_VALUES, *args.values] for option in ("--values", path)]
    run.run(
        "helm", "upgrade", "--install", args.release, CHART, "--namespace", args.namespace, "--create-namespace",
        *values,
        "--set", f"image.repository={IMAGE_REPOSITORY}", "--set", f"image.tag={IMAGE_TAG}",
        "--set", "image.pullPolicy=Never",
        "--wait", "--timeout", "15m",
    )  # fmt: skip
    run.run(
        "kubectl", "--namespace", args.namespace, "rollout", "status", f"deployment/{args.release}", "--timeout", "15m"
    )
    if args.ci_checks:
        run.run("helm", "test", args.release, "--namespace", args.namespace, "--logs", "--timeout", "10m")


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise SystemExit(f"kubectl port-forward did not open 127.0.0.1:{port} in {timeout:.0f} s")


def smoke_test_command(args: argparse.Namespace) -> list[str]:
    command = ["visionserve", "smoke-test", "--url", f"http://127.0.0.1:{args.port}", "--timeout", "120"]
    if args.ci_checks:
        command += ["--metrics-url", f"http://127.0.0.1:{METRICS_PORT}"]
    return command


def smoke_test(run: Runner, args: argparse.Namespace) -> None:
    """Through kubectl port-forward, as a user would reach the service; the forwards end with the test."""
    forwards = [(f"service/{args.release}", f"{args.port}:80", args.port)]
    if args.ci_checks:
        forwards.append((f"service/{args.release}-metrics", f"{METRICS_PORT}:{METRICS_PORT}", METRICS_PORT))
    started = [run.start("kubectl", "--namespace", args.namespace, "port-forward", *target[:2]) for target in forwards]
    try:
        if not run.dry_run:
            for _, _, port in forwards:
                wait_for_port(port)
        command = smoke_test_command(args)
        run.run(sys.executable, "-m", "app.cli", *command[1:])  # the visionserve command of this checkout
    finally:
        for process in started:
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    engine = engine_of(args)
    if not args.dry_run and (missing := missing_tools(engine)):
        print(
            f"kind-demo needs {', '.join(missing)} on the PATH (docker or podman, kind, kubectl, helm)", file=sys.stderr
        )
        return 2
    env = dict(os.environ)
    if engine == "podman":
        env["KIND_EXPERIMENTAL_PROVIDER"] = "podman"
    run = Runner(args.dry_run, env)
    try:
        build_and_load(run, engine, args.cluster)
        if args.api_keys_secret:
            run.env["VISIONSERVE_API_KEY"] = api_key_secret(run, args.namespace, args.api_keys_secret)
        install(run, args)
        smoke_test(run, args)
    except subprocess.CalledProcessError as exc:
        print(f"kind-demo: `{' '.join(map(str, exc.cmd))}` failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    print(
        f"\nvisionserve runs on kind cluster {args.cluster!r}, namespace {args.namespace!r}. To reach it:\n"
        f"  kubectl --namespace {args.namespace} port-forward service/{args.release} {args.port}:80\n"
        f"then open http://127.0.0.1:{args.port}/ (the page) or run `visionserve predict --sample`.\n"
        f"Remove it all: kind delete cluster --name {args.cluster}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
