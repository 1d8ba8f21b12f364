"""The release's version comes from its git tag, and a released version is never published twice.

    python scripts/release_version.py version v1.4.0          # prints version=1.4.0 (for $GITHUB_OUTPUT)
    python scripts/release_version.py stamp 1.4.0             # Chart.yaml version + appVersion, pyproject, app
    python scripts/release_version.py absent ghcr.io/o/visionserve:1.4.0 ghcr.io/o/charts/visionserve:1.4.0

`stamp` writes the one version into every file that states it: the chart's `version` and `appVersion` (the
chart's default image tag is its appVersion), pyproject.toml's project version and `app.__version__` (what the
service reports). The repository keeps a development version; only the release workflow's checkout is stamped.

`absent` asks the registry (`docker buildx imagetools inspect --raw`, which reads any OCI artifact, Helm charts
included) for each reference and exits 1 when one is already there: a tag is pushed once, and a re-run of a
release, or a second tag for the same version, is refused instead of overwriting what users may have deployed.
An answer that is neither the manifest nor "not found" (the registry is down, the login failed) also exits 1:
the check fails closed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# SemVer 2 without build metadata: a "+" is not allowed in an OCI tag
TAG = re.compile(r"^v(?P<version>(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)$")
# file -> the one line that states the version, as a pattern whose group 1 is kept and group 2 is the version
VERSION_LINES: dict[str, list[re.Pattern[str]]] = {
    "charts/visionserve/Chart.yaml": [
        re.compile(r'^(version: )("?[^"\n]*"?)$', re.M),
        re.compile(r'^(appVersion: )("?[^"\n]*"?)$', re.M),
    ],
    "pyproject.toml": [re.compile(r'^(version = )("[^"\n]*")$', re.M)],
    "app/__init__.py": [re.compile(r'^(__version__ = )("[^"\n]*")$', re.M)],
}
NOT_FOUND = ("not found", "manifest unknown", "name unknown")
INSPECT = ("docker", "buildx", "imagetools", "inspect", "--raw")


class Presence(Enum):
    """What the registry said about one reference."""

    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


def version_from_tag(tag: str) -> str:
    """'v1.4.0' -> '1.4.0'; ValueError for anything that is not v + SemVer (no build metadata)."""
    match = TAG.match(tag)
    if match is None:
        raise ValueError(f"tag {tag!r} is not v<major>.<minor>.<patch>[-<pre-release>]")
    return match.group("version")


def stamp(version: str, root: Path = ROOT) -> list[Path]:
    """Write `version` into every line VERSION_LINES names; each pattern must match exactly once."""
    version_from_tag(f"v{version}")  # the same rule as a tag's
    written = []
    for relative, patterns in VERSION_LINES.items():
        path = root / relative
        text = path.read_text()
        for pattern in patterns:
            text, count = pattern.subn(lambda m: f'{m.group(1)}"{version}"', text)
            if count != 1:
                raise ValueError(f"{relative}: {pattern.pattern} matched {count} lines, not 1")
        path.write_text(text)
        written.append(path)
    return written


def presence(returncode: int, output: str) -> Presence:
    """The registry's answer to `imagetools inspect`: the manifest, 'not found', or anything else."""
    if returncode == 0:
        return Presence.PRESENT
    lowered = output.lower()
    return Presence.ABSENT if any(words in lowered for words in NOT_FOUND) else Presence.UNKNOWN


Inspect = Callable[[str], tuple[int, str]]


def inspect_with_docker(reference: str) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `docker buildx imagetools inspect --raw REFERENCE`."""
    done = subprocess.run([*INSPECT, reference], capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def check_absent(references: Sequence[str], inspect: Inspect = inspect_with_docker) -> list[str]:
    """One complaint per reference that is already published or could not be checked."""
    complaints = []
    for reference in references:
        returncode, output = inspect(reference)
        found = presence(returncode, output)
        if found is Presence.PRESENT:
            complaints.append(f"{reference} is already published: a released version is never overwritten")
        elif found is Presence.UNKNOWN:
            complaints.append(f"{reference}: the registry's answer is not 'not found': {output.strip()[-500:]}")
    return complaints


def main(argv: Sequence[str] | None = None, inspect: Inspect = inspect_with_docker) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print version=X.Y.Z for a tag vX.Y.Z").add_argument("tag")
    commands.add_parser("stamp", help="write X.Y.Z into the chart, pyproject.toml and app").add_argument("version")
    commands.add_parser("absent", help="exit 1 when a reference is already published").add_argument(
        "references", nargs="+"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "version":
            print(f"version={version_from_tag(args.tag)}")
        elif args.command == "stamp":
            for path in stamp(args.version):
                print(f"stamped {path.relative_to(ROOT)} with {args.version}")
        else:
            complaints = check_absent(args.references, inspect)
            for complaint in complaints:
                print(f"::error::{complaint}", file=sys.stderr)
            if complaints:
                return 1
            print("not published yet: " + ", ".join(args.references))
    except ValueError as error:
        print(f"::error::{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
