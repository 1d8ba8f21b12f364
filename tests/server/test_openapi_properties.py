"""Property-based requests written from /openapi.json by schemathesis, against a real gunicorn on 127.0.0.1.

Schemathesis reads the served document and sends what it allows and what it does not (valid and invalid query
parameters, bodies of every declared content type, methods the document does not list), 50 examples per
operation at most, with a fixed seed so that a failure is reproducible. Every answer must be no 5xx, carry a
documented status, content type and headers, match its declared schema, and refuse invalid requests with a 4xx.
"Schema-valid request rejected" (positive_data_acceptance) is not asked for: a schema-valid body is not yet a
decodable picture, and the 400 that answers it is documented. Two documented answers are told to schemathesis:
an invalid request may also be refused 413 (more images or pixels than the limits, checked before the rest), and
a 504 is not a server error: a generated X-Request-Timeout-Ms of a few milliseconds passes before any image runs,
and 504 deadline_exceeded is the documented answer. Every other 5xx fails.
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from tests.harness.local_server import LocalServer
from tests.helpers import require_tool

pytestmark = [pytest.mark.service, pytest.mark.slow]

SETTINGS = {
    "weights": "random",
    "cifar_head": "random",
    "runtime": "torch",
    "workers": 1,
    "torch_threads": 1,
    "max_batch_size": 8,
    "max_wait_ms": 20,
}
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "unsupported_method",
)
CONFIG = """
[checks.not_a_server_error]
expected-statuses = ["1xx", "2xx", "3xx", "4xx", "504"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""
MAX_EXAMPLES = 50
SEED = 20261127


def _schemathesis(url: str, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        require_tool("schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",  # nothing written into the repository
        "--continue-on-failure",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    (report.parent / "schemathesis.toml").write_text(CONFIG)  # read from the working directory
    return subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=600, check=False)


def test_every_documented_operation_holds_to_its_schema_under_generated_requests(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    with LocalServer(SETTINGS) as server:
        documented = {
            f"{method.upper()} {path}"
            for path, item in requests.get(f"{server.url}/openapi.json", timeout=10).json()["paths"].items()
            for method in item
            if path != "/openapi.json"  # schemathesis leaves the document itself out
        }
        done = _schemathesis(server.url, report)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-8000:] + server.log()[-3000:]
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200  # still serving afterwards
        assert "Traceback" not in server.log(), server.log()[-4000:]
    suite = ET.parse(report).getroot()
    assert {case.get("name") for case in suite.iter("testcase")} == documented
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated and generated.group(1) == generated.group(2), output[-3000:]
    assert int(generated.group(1)) >= 100, "too few requests to say anything"
