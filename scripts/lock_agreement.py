"""Check that the CPU image's lock pins what the default lock pins, torch aside.

    python scripts/lock_agreement.py requirements/image-cpu.lock requirements/image.lock

requirements/image-cpu.lock (PyTorch's CPU index) and requirements/image.lock (PyPI) differ on purpose in torch and
torchvision only: the same version, published as other files (`2.14.1+cpu`), and without the CUDA libraries that
PyPI's build pulls in. Every other package must be the same version with the same hashes in both, so the CPU and
GPU images run the same service. The release workflow runs this after resolving or reading the CPU lock, before
anything is built; exit status 1 names each disagreement.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

TORCH_PACKAGES = frozenset({"torch", "torchvision"})  # the same version on both indexes, other files


@dataclass
class Pin:
    name: str
    version: str
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def canonical(name: str) -> str:
    """PEP 503's normalised name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, Pin]:
    """name -> Pin, from uv's requirements format (pins, --hash continuation lines, `# via` notes)."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in text.splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            current = Pin(canonical(match.group(1)), match.group(2))
            assert current.name not in pins, f"{current.name} is pinned twice"
            pins[current.name] = current
            in_via = False
        elif current and (match := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)):
            current.hashes.append(match.group(1))
        elif current and (match := re.match(r"^\s+# via(?: (.+))?$", line)):
            in_via = match.group(1) is None
            if match.group(1):
                current.via.add(match.group(1).strip())
        elif current and in_via and (match := re.match(r"^\s+#\s{3}(.+)$", line)):
            current.via.add(match.group(1).strip())
        elif line.strip() and not line.startswith("#"):
            raise AssertionError(f"unexpected line in a lock: {line!r}")
    return pins


def disagreements(cpu: dict[str, Pin], default: dict[str, Pin]) -> list[str]:
    """What the CPU lock pins differently from the default one; empty when they agree."""
    found = []
    for name, pin in sorted(cpu.items()):
        other = default.get(name)
        if other is None:
            found.append(f"{name}=={pin.version} is in the CPU lock only")
        elif name in TORCH_PACKAGES:
            if pin.version.split("+")[0] != other.version.split("+")[0]:
                found.append(f"{name}: {pin.version} on the CPU index, {other.version} on PyPI")
        elif (pin.version, sorted(pin.hashes)) != (other.version, sorted(other.hashes)):
            found.append(f"{name}: {pin.version} in the CPU lock, {other.version} in the default (or other hashes)")
    found += [f"{name} is missing from the CPU lock" for name in sorted(TORCH_PACKAGES - set(cpu))]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cpu_lock", type=Path)
    parser.add_argument("default_lock", type=Path)
    args = parser.parse_args(argv)
    found = disagreements(parse_lock(args.cpu_lock.read_text()), parse_lock(args.default_lock.read_text()))
    for line in found:
        print(f"{args.cpu_lock}: {line}", file=sys.stderr)
    if not found:
        print(f"{args.cpu_lock} agrees with {args.default_lock} (torch and torchvision aside)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
