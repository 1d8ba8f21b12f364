"""Write the image's hash-locked requirements from pyproject.toml with `uv pip compile --generate-hashes`.

    python scripts/lock_requirements.py              # requirements/build.in, then requirements/image.lock (PyPI)
    python scripts/lock_requirements.py --torch cpu  # also requirements/image-cpu.lock (PyTorch's CPU index)

The Dockerfile installs a lock with `pip install --require-hashes --no-deps`: every file pip installs must have
one of the lock's sha256 hashes, whichever index served it, and nothing outside the lock is pulled in. The project
itself is then installed with --no-deps --no-build-isolation (its build backend, setuptools, is locked too:
requirements/build.in is written here from pyproject's [build-system] requires).

torch and torchvision are the special case: the same version is published as different files by different
indexes, so a lock is per index, never mixed:
- requirements/image.lock (the default) resolves everything on PyPI. PyPI's torch 2.14.1 for Linux x86_64 is the
  CUDA 13 build: it runs on CPU nodes and GPU nodes alike, and pulls the nvidia-* and triton wheels (about 4 GB in
  the image). Local image builds use a mirror of PyPI on this machine (tests/container/image_check.py mounts it);
  the mirror serves PyPI's very files, and the hashes prove it at every build.
- requirements/image-cpu.lock resolves torch and torchvision on https://download.pytorch.org/whl/cpu (the
  `2.14.1+cpu` files, no CUDA libraries; uv's `--torch-backend cpu`) and the rest on PyPI, starting from a copy of
  image.lock so that every other pin stays the same. That index cannot be reached from this project's
  own machines, so this lock is written only where it can be (`make lock TORCH=cpu`, or by the release
  workflow when none is committed), then used with
  `--build-arg LOCK=requirements/image-cpu.lock --build-arg PIP_INDEX_URL=https://download.pytorch.org/whl/cpu
  --build-arg PIP_EXTRA_INDEX_URL=https://pypi.org/simple`. No hash of that index is written by hand.

Two more locks are for workflow jobs rather than the image, both from PyPI and written every time (unless
--image-only): .github/deploy/requirements.lock is pyproject's `deploy` dependency group (the rollout check's
kubernetes client, the smoke test's pillow and pyyaml, setuptools), installed with --require-hashes before the job
holds any cluster credential; .github/release/requirements.lock is the `release` group (uv), with which the release
workflow resolves requirements/image-cpu.lock on PyTorch's CPU index when no such lock is committed
(`--torch cpu --image-only`), then checks it with scripts/lock_agreement.py.

The image locks are resolved for the image: CPython 3.11 on Linux x86_64 (manylinux_2_28; the base image is Debian
bookworm). `uv` records its exact command in each lock's header, run from the repository root, so an update bot
(renovate.json) can rerun it; tests/supply/test_locks.py fails when pyproject.toml and the locks disagree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
BUILD_IN = REQUIREMENTS / "build.in"
PYPI = "https://pypi.org/simple"
TARGET = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]
# lock file -> the index options that resolve it. For the CPU lock, uv's --torch-backend cpu takes the PyTorch
# packages alone from https://download.pytorch.org/whl/cpu and the rest from PyPI, so those pins can equal image.lock's.
LOCKS = {
    "pypi": ("requirements/image.lock", ["--index-url", PYPI]),
    "cpu": ("requirements/image-cpu.lock", ["--index-url", PYPI, "--torch-backend", "cpu"]),
}
DEPLOY_LOCK = ".github/deploy/requirements.lock"
DEPLOY_GROUP = "pyproject.toml:deploy"
RELEASE_LOCK = ".github/release/requirements.lock"
RELEASE_GROUP = "pyproject.toml:release"
TOOL_LOCKS = {DEPLOY_GROUP: DEPLOY_LOCK, RELEASE_GROUP: RELEASE_LOCK}  # dependency group -> its lock


def build_requirements(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """requirements/build.in: the build backend pyproject.toml names, so the image builds the project offline."""
    requires = tomllib.loads(pyproject.read_text())["build-system"]["requires"]
    header = "# Written by scripts/lock_requirements.py from pyproject.toml [build-system] requires: do not edit.\n"
    return header + "".join(f"{requirement}\n" for requirement in requires)


def compile_command(uv: str, torch: str) -> list[str]:
    """The uv command for one lock, with paths relative to the repository root (uv writes it into the header)."""
    output, index = LOCKS[torch]
    sources = ["pyproject.toml", str(BUILD_IN.relative_to(ROOT))]
    return [uv, "pip", "compile", *sources, "--generate-hashes", *TARGET, *index, "--output-file", output]


def tool_compile_command(uv: str, group: str = DEPLOY_GROUP) -> list[str]:
    """The uv command for a workflow job's lock: one dependency group alone, on PyPI."""
    index = ["--index-url", PYPI]
    return [
        uv,
        "pip",
        "compile",
        "--group",
        group,
        "--generate-hashes",
        *TARGET,
        *index,
        "--output-file",
        TOOL_LOCKS[group],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--torch",
        choices=sorted(LOCKS),
        action="append",
        help="which torch index to lock (repeatable; default: pypi)",
    )
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed version")
    parser.add_argument("--image-only", action="store_true", help="the image locks alone, not the workflow tools'")
    args = parser.parse_args(argv)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        print("uv is not installed: pip install uv (it is in the test extra)", file=sys.stderr)
        return 2
    REQUIREMENTS.mkdir(exist_ok=True)
    BUILD_IN.write_text(build_requirements())
    upgrade = ["--upgrade"] if args.upgrade else []
    commands = [compile_command(uv, torch) + upgrade for torch in args.torch or ["pypi"]]
    if "cpu" in (args.torch or []):
        seed_cpu_lock()
    if not args.image_only:
        commands += [tool_compile_command(uv, group) + upgrade for group in TOOL_LOCKS]
    for command in commands:
        print("$ uv", " ".join(command[1:]), flush=True)
        # no user or project uv configuration may change what is locked
        done = subprocess.run(command, cwd=ROOT, check=False, env=_uv_environment())
        if done.returncode != 0:
            return done.returncode
    return 0


def seed_cpu_lock() -> None:
    """A first CPU lock starts as a copy of image.lock: uv keeps an output file's pins where it can, so every package
    but the PyTorch ones keeps image.lock's version (and PyPI's hashes), as scripts/lock_agreement.py requires."""
    cpu, default = ROOT / LOCKS["cpu"][0], ROOT / LOCKS["pypi"][0]
    if not cpu.exists() and default.exists():
        shutil.copyfile(default, cpu)


def _uv_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env["UV_NO_CONFIG"] = "1"
    return env


if __name__ == "__main__":
    sys.exit(main())
