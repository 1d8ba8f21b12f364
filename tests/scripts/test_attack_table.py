"""scripts/attack_table.py against its own real server: each attack's outcome is what the service promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "attack_table.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_an_unknown_attack_is_refused_by_name() -> None:
    done = _run("--only", "slow-header,teleport")
    assert done.returncode == 2 and "teleport" in done.stderr


@pytest.mark.service
def test_the_attacks_get_the_answers_the_service_promises(tmp_path: Path) -> None:
    results = tmp_path / "attacks.json"
    attacks = "slow-header,stalled-body,gigapixel-16,huge-integer,repeated-parameter"
    settings = ["--set", "runtime=torch", "--set", "torch_threads=1", "--set", "header_timeout_s=1"]
    done = _run("--only", attacks, *settings, "--set", "body_timeout_s=1", "--json", str(results))
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = {name: outcome["status"] for name, outcome in json.loads(results.read_text()).items()}
    assert outcomes == {
        "slow-header": "408 request_timeout",
        "stalled-body": "408 request_timeout",
        "gigapixel-16": "413 pixel_budget_exceeded",
        "huge-integer": "400 malformed_json",
        "repeated-parameter": "400 repeated_parameter",
    }
    assert "| ?top_k=1&top_k=5 | 400 repeated_parameter |" in done.stdout
