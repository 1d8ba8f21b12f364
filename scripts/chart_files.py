"""Copy monitoring/'s alert rules and dashboards into charts/visionserve/files/ (never edited by hand).

The chart must carry real files, not links out of itself: Argo CD, `helm pull` and `helm package` take the chart
folder alone. monitoring/ stays the one source; this script writes the copies.

python scripts/chart_files.py          # rewrite charts/visionserve/files/
python scripts/chart_files.py --check  # exit 1 when files/ differs from monitoring/ (changed, missing or extra)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "monitoring"
TARGET = ROOT / "charts" / "visionserve" / "files"
PATTERNS = ("alerts.yaml", "dashboards/*.json")


def wanted(source: Path = SOURCE) -> dict[str, bytes]:
    """Relative path -> bytes of every file the chart carries from monitoring/."""
    return {
        path.relative_to(source).as_posix(): path.read_bytes()
        for pattern in PATTERNS
        for path in sorted(source.glob(pattern))
    }


def entries(target: Path) -> list[Path]:
    """Files and links under target, deepest first; links (to folders too) are listed, never followed."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(target):  # os.walk does not descend into linked folders
        found += [Path(folder) / name for name in files]
        found += [Path(folder) / name for name in subfolders if (Path(folder) / name).is_symlink()]
    return sorted(found, reverse=True)


def present(target: Path = TARGET) -> dict[str, bytes]:
    """Relative path -> bytes of everything under files/ (a link counts as a difference)."""
    return {
        path.relative_to(target).as_posix(): b"link to " + os.fsencode(path.readlink())
        if path.is_symlink()
        else path.read_bytes()
        for path in entries(target)
    }


def drift(source: Path = SOURCE, target: Path = TARGET) -> list[str]:
    """What differs between files/ and monitoring/, one line each; empty when the copies are current."""
    expected, actual = wanted(source), present(target)
    lines = [f"missing: {name}" for name in sorted(expected.keys() - actual.keys())]
    lines += [f"extra: {name}" for name in sorted(actual.keys() - expected.keys())]
    lines += [f"changed: {name}" for name in sorted(expected.keys() & actual.keys()) if expected[name] != actual[name]]
    return lines


def write(source: Path = SOURCE, target: Path = TARGET) -> None:
    """Make files/ hold exactly the copies: links and stale files go, every copy is rewritten."""
    expected = wanted(source)
    for path in entries(target):
        if path.is_symlink() or path.relative_to(target).as_posix() not in expected:
            path.unlink()
    for name, data in expected.items():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when files/ differs from monitoring/")
    args = parser.parse_args(argv)
    if args.check:
        lines = drift()
        for line in lines:
            print(f"{TARGET.relative_to(ROOT)}: {line} (run make manifests)", file=sys.stderr)
        return 1 if lines else 0
    write()
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
