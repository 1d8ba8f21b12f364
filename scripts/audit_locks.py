"""Audit the image's hash locks with pip-audit: known vulnerabilities in exactly the pinned versions.

    python scripts/audit_locks.py                       # every requirements/*.lock
    python scripts/audit_locks.py requirements/image.lock

pip-audit reads the pins and hashes without installing anything (--disable-pip) and asks OSV (osv.dev, which
carries the Python Packaging Advisory Database and GitHub's advisories) about each pinned version. When that
database cannot be reached, nothing can be said either way: the script says so (a GitHub Actions warning) and
exits 0. It never hides a finding: the database is probed first, and once it has answered, any non-zero pip-audit
exit (a vulnerability, or an error half-way) fails the run. Exit codes: 0 clean or skipped, 1 vulnerabilities
(listed) or a failed audit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OSV_URL = "https://api.osv.dev/v1/query"
# the query pip-audit sends for each pin, here for a project OSV always knows
PROBE = {"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "24.0"}


def database_unreachable(osv_url: str = OSV_URL, timeout: float = 15.0) -> str | None:
    """None when the vulnerability database answers a query as pip-audit asks it, else why it did not."""
    request = urllib.request.Request(osv_url, data=json.dumps(PROBE).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if not isinstance(json.load(response), dict):
                return "the answer is not an OSV result"
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return None


def audit(locks: list[Path], osv_url: str = OSV_URL) -> tuple[int, list[str]]:
    """Run pip-audit on the locks; (its exit code, one line per vulnerability found)."""
    tool = shutil.which("pip-audit", path=str(Path(sys.executable).parent)) or shutil.which("pip-audit")
    if tool is None:
        return 1, ["pip-audit is not installed: pip install pip-audit"]
    with tempfile.TemporaryDirectory(prefix="pip-audit-") as folder:
        report = Path(folder) / "report.json"
        command = [tool, "--disable-pip", "--require-hashes", "--progress-spinner", "off", "--timeout", "30"]
        command += ["--vulnerability-service", "osv", "--osv-url", osv_url, "--cache-dir", str(Path(folder) / "c")]
        command += [arg for lock in locks for arg in ("--requirement", str(lock))]
        command += ["--format", "json", "--output", str(report)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if not report.is_file():
            return done.returncode or 1, [f"pip-audit wrote no report: {done.stderr.strip()[-2000:]}"]
        return done.returncode, findings(json.loads(report.read_text()))


def findings(report: dict) -> list[str]:
    """`name version: ID (fixed in ...)` for each vulnerability, and each package pip-audit could not audit."""
    lines = []
    for dependency in report.get("dependencies", []):
        for vuln in dependency.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            ids = " / ".join([vuln["id"], *vuln.get("aliases", [])])
            lines.append(f"{dependency['name']} {dependency['version']}: {ids} (fixed in {fixed})")
        if "skip_reason" in dependency:
            lines.append(f"{dependency['name']}: not audited: {dependency['skip_reason']}")
    return lines


def _shown(path: Path) -> str:
    """A lock's path as the repository names it, when it is inside the repository."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("locks", nargs="*", type=Path, help="lock files (default: requirements/*.lock)")
    parser.add_argument("--osv-url", default=OSV_URL, help="the OSV query API (default: %(default)s)")
    args = parser.parse_args(argv)
    locks = args.locks or sorted((ROOT / "requirements").glob("*.lock"))
    if not locks:
        print("no lock file to audit", file=sys.stderr)
        return 1
    names = ", ".join(_shown(lock) for lock in locks)
    reason = database_unreachable(args.osv_url)
    if reason is not None:
        print(f"::warning title=pip-audit skipped::vulnerability database unreachable ({reason}); {names} not audited")
        return 0
    code, lines = audit(locks, args.osv_url)
    print("\n".join(lines))
    if code != 0:
        print(f"pip-audit failed on {names} (exit {code})", file=sys.stderr)
        return 1
    print(f"pip-audit: no known vulnerability in {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
