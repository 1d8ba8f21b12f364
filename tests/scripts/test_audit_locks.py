"""scripts/audit_locks.py runs the real pip-audit against a stand-in OSV database on 127.0.0.1.

The stand-in answers pip-audit's own queries with a published advisory, with nothing, or with errors; the real
osv.dev is not reachable from the machines this project is built on, so the skip path is the one CI sees there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.harness.local_server import free_port
from tests.helpers import ROOT, require_tool, run_script, stand_in

# jinja2 3.1.4 and its sha256 hashes as PyPI publishes them; GHSA-q2x7-8rv6-6q7h (CVE-2024-56201) affects it
VULNERABLE_LOCK = """jinja2==3.1.4 \\
    --hash=sha256:4a3aee7acbbe7303aede8e9648d13b8bf88a429282aa6122a993f0ac800cb369 \\
    --hash=sha256:bc5dd2abb727a5319567b7a813e6a2e7318c39f4f487cfe6c89c6f9c7d25197d
"""
ADVISORY = {
    "id": "GHSA-q2x7-8rv6-6q7h",
    "aliases": ["CVE-2024-56201"],
    "summary": "Jinja has a sandbox breakout through malicious filenames",
    "affected": [
        {
            "package": {"name": "jinja2", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0.0"}, {"fixed": "3.1.5"}]}],
        }
    ],
}
Answer = Callable[[dict], tuple[int, dict]]


def _stand_in(answer: Answer) -> Iterator[str]:
    class OSV(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, body = answer(query)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    with stand_in(OSV) as url:
        yield f"{url}/v1/query"


def _jinja_is_vulnerable(query: dict) -> tuple[int, dict]:
    if query["package"]["name"] == "jinja2" and query["version"] == "3.1.4":
        return 200, {"vulns": [ADVISORY]}
    return 200, {}


def _only_the_probe_works(query: dict) -> tuple[int, dict]:
    return (200, {}) if query["package"]["name"] == "pip" else (500, {"error": "internal"})


@pytest.fixture
def osv(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _stand_in(request.param)


@pytest.fixture
def vulnerable_lock(tmp_path: Path) -> Path:
    path = tmp_path / "vulnerable.lock"
    path.write_text(VULNERABLE_LOCK)
    return path


def _audit(*args: str) -> tuple[int, str]:
    require_tool("pip-audit")
    done = run_script("scripts/audit_locks.py", *args, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("osv", [_jinja_is_vulnerable], indirect=True)
def test_a_known_vulnerability_fails_the_audit_and_is_named(osv: str, vulnerable_lock: Path) -> None:
    code, output = _audit("--osv-url", osv, str(vulnerable_lock))
    assert code == 1, output
    finding = next(line for line in output.splitlines() if line.startswith("jinja2 3.1.4: "))
    assert "GHSA-q2x7-8rv6-6q7h" in finding and "CVE-2024-56201" in finding and "(fixed in 3.1.5)" in finding


@pytest.mark.parametrize("osv", [_jinja_is_vulnerable], indirect=True)
def test_the_projects_locks_are_audited_pin_by_pin(osv: str) -> None:
    """Every committed lock goes through pip-audit; the stand-in knows no advisory for its versions."""
    code, output = _audit("--osv-url", osv)
    assert code == 0, output
    assert "pip-audit: no known vulnerability in requirements/image.lock" in output


def test_an_unreachable_database_skips_with_the_reason(vulnerable_lock: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1/query"
    code, output = _audit("--osv-url", closed, str(vulnerable_lock))
    assert code == 0, output
    assert output.startswith("::warning title=pip-audit skipped::vulnerability database unreachable (")
    assert "not audited" in output and "Connection refused" in output


@pytest.mark.parametrize("osv", [_only_the_probe_works], indirect=True)
def test_a_database_that_fails_after_the_probe_fails_the_audit_rather_than_hiding_it(
    osv: str, vulnerable_lock: Path
) -> None:
    code, output = _audit("--osv-url", osv, str(vulnerable_lock))
    assert code == 1, output
    assert "skipped" not in output


def test_the_ci_workflow_runs_the_audit() -> None:
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "python scripts/audit_locks.py" in ci and "pip-audit" in ci
