"""Build the image with podman and run it the way the chart does: read-only root, tmpfs, UID 10001.

    python -m tests.container.image_check              # build (test build: no weights), run, check, stop
    python -m tests.container.image_check --no-build   # reuse localhost/visionserve:test

Where no registry can be pulled from, the base image is made locally with debootstrap (as --base-image names
it), and the locked wheels come from the local package index when one is mounted (--index-dir), else from PyPI.
Prints the image size, the build time, the smoke test's report and the exit after SIGTERM; exits non-zero on
any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.harness.local_server import free_port

ROOT = Path(__file__).resolve().parents[2]

IMAGE = "localhost/visionserve:test"
BUILDER_IMAGE = "localhost/visionserve:test-builder"  # the builder stage, tagged so its layers stay cached
BASE_IMAGE = "localhost/bookworm-python:3.11"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


class Podman:
    """podman with this machine's adjustments: runc, no default ulimits, host network."""

    def __init__(self) -> None:
        handle, self.conf = tempfile.mkstemp(prefix="containers-", suffix=".conf")
        os.write(handle, b"[containers]\ndefault_ulimits = []\n")
        os.close(handle)

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 1800, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CONTAINERS_CONF": self.conf}
        return subprocess.run(
            ["podman", "--runtime", "runc", *args],
            env=env,
            check=check,
            timeout=timeout,
            text=True,
            capture_output=capture,
        )

    def has_image(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0


def make_base_image(podman: Podman, name: str) -> None:
    """A Debian bookworm rootfs with python3-venv, imported as an image (no registry needed)."""
    with tempfile.TemporaryDirectory(prefix="rootfs-") as rootfs:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                rootfs,
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        certificates = Path("/etc/ssl/certs/ca-certificates.crt")
        if certificates.is_file():
            (Path(rootfs) / "etc/ssl/certs/ca-certificates.crt").write_bytes(certificates.read_bytes())
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        env = {**os.environ, "CONTAINERS_CONF": podman.conf}
        subprocess.run(
            ["podman", "--runtime", "runc", "import", "-", name],
            stdin=tar.stdout,
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        tar.wait()


def build(podman: Podman, base_image: str, index_dir: Path | None) -> float:
    """Build the test image (no weights baked); returns seconds taken."""
    if base_image.startswith("localhost/") and not podman.has_image(base_image):
        make_base_image(podman, base_image)
    args = [
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--build-arg",
        "FETCH_WEIGHTS=false",
    ]
    if index_dir is not None:
        # a local mirror of PyPI's files (torch and the CUDA wheels) first, PyPI for the rest: the lock's hashes
        # decide what is installed, so the mirror can only save downloads, never change the image
        args += [
            "-v",
            f"{index_dir}:/mnt/index:ro",
            "--build-arg",
            "PIP_INDEX_URL=file:///mnt/index/simple",
            "--build-arg",
            "PIP_EXTRA_INDEX_URL=https://pypi.org/simple",
        ]
    started = time.monotonic()
    done = podman(*args, "-t", IMAGE, str(ROOT), check=False)
    seconds = time.monotonic() - started
    if done.returncode == 0:
        # from the layers just built, at once: the builder stage keeps a tag, so the next build reuses its
        # locked install (the longest step) while the lock is unchanged
        done = podman(*args, "--target", "builder", "-t", BUILDER_IMAGE, str(ROOT), check=False)
    # Each build leaves untagged stage images and the previous test image behind, about 6 GB each with torch:
    # removing the dangling ones keeps repeated runs from filling the disk.
    podman("image", "prune", "-f", check=False)
    if done.returncode != 0:
        raise RuntimeError(f"podman build failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds


def run_and_check(podman: Podman, grace_s: float) -> list[str]:
    """Run like the chart: read-only root, tmpfs for the writable paths, UID 10001, random weights (explicit)."""
    port = free_port()
    container = podman(
        "run",
        "-d",
        "--network",
        "host",
        "--read-only",
        "--user",
        "10001:10001",
        "--tmpfs",
        "/tmp:rw,size=256m",
        "--tmpfs",
        "/cache:rw,size=1g",
        "-e",
        "XDG_CACHE_HOME=/cache",  # as the chart sets it: the converted model is cached there
        "-e",
        "VISIONSERVE_HOST=127.0.0.1",
        "-e",
        f"VISIONSERVE_PORT={port}",
        "-e",
        "VISIONSERVE_WEIGHTS=random",
        "-e",
        "VISIONSERVE_CIFAR_HEAD=random",
        "-e",
        "VISIONSERVE_WORKERS=1",
        "-e",
        "VISIONSERVE_TORCH_THREADS=2",
        "-e",
        "VISIONSERVE_DRAIN_SECONDS=1",
        "-e",
        f"VISIONSERVE_GRACEFUL_TIMEOUT={int(grace_s)}",
        IMAGE,
    ).stdout.strip()
    report = [f"container {container[:12]} on 127.0.0.1:{port}"]
    try:
        # inside the container, as the chart's helm test runs it: the image's own `visionserve` command
        smoke = podman(
            "exec",
            container,
            "visionserve",
            "smoke-test",
            "--url",
            f"http://127.0.0.1:{port}",
            "--timeout",
            "180",
            check=False,
            timeout=300,
        )
        report += smoke.stdout.splitlines()
        if smoke.returncode != 0:
            logs = podman("logs", container, check=False).stderr[-3000:]
            raise RuntimeError(f"smoke test failed: {smoke.stderr}\n{logs}")
        started = time.monotonic()
        podman("kill", "--signal", "TERM", container)
        exit_code = int(podman("wait", container, timeout=grace_s + 30).stdout.strip().splitlines()[-1])
        seconds = time.monotonic() - started
        if exit_code != 0 or seconds > grace_s:
            raise RuntimeError(f"after SIGTERM: exit {exit_code} in {seconds:.1f}s (grace {grace_s:.0f}s)")
        report.append(f"PASS SIGTERM: exit 0 in {seconds:.1f}s (grace period {grace_s:.0f}s)")
    finally:
        podman("rm", "-f", container, check=False)
    return report


def image_size_mb(podman: Podman) -> float:
    inspected = json.loads(podman("image", "inspect", IMAGE).stdout)
    return inspected[0]["Size"] / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-build", action="store_true", help=f"reuse {IMAGE}")
    parser.add_argument("--base-image", default=BASE_IMAGE, help="BASE_IMAGE build argument")
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=Path("/opt/pypi-more"),
        help="local mirror of PyPI holding torch (mounted into the build when it exists)",
    )
    parser.add_argument("--grace", type=float, default=30.0, help="seconds the container gets after SIGTERM")
    args = parser.parse_args(argv)
    podman = Podman()
    try:
        if not args.no_build:
            index = args.index_dir if (args.index_dir / "simple").is_dir() else None
            print(f"build: {build(podman, args.base_image, index):.0f}s", flush=True)
        print(f"image: {IMAGE}, {image_size_mb(podman):.0f} MB", flush=True)
        print("\n".join(run_and_check(podman, args.grace)))
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(f"container test FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        os.unlink(podman.conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
