"""The Dockerfile: hadolint clean, no HIGH/CRITICAL trivy finding, and the shape the chart relies on."""

from __future__ import annotations

import json
import re
import subprocess

from tests.helpers import ROOT, require_tool

DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_is_clean() -> None:
    done = subprocess.run(
        [require_tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_trivy_finds_no_high_or_critical_misconfiguration() -> None:
    done = subprocess.run(
        [require_tool("trivy"), "config", "--skip-check-update", "--quiet", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    findings = [
        (m["Severity"], m["ID"])
        for result in json.loads(done.stdout).get("Results", [])
        for m in result.get("Misconfigurations") or []
    ]
    assert not [f for f in findings if f[0] in ("HIGH", "CRITICAL")], findings


def test_the_image_is_what_the_chart_expects() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11", text, re.MULTILINE)
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)  # numeric: runAsNonRoot can verify it
    assert re.search(r'^ENTRYPOINT \["visionserve", "serve"\]$', text, re.MULTILINE)  # exec form, the console script
    assert "ARG FETCH_WEIGHTS=true" in text and "visionserve fetch-weights --weights" in text
    assert "scripts/" not in text  # the chart's init container and helm test run the installed `visionserve`
    assert text.count("FROM ") >= 3 and "COPY --from=builder /opt/venv /opt/venv" in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch==2.14.1"' in pyproject and '"torchvision==0.29.1"' in pyproject
    assert 'visionserve = "app.cli:main"' in pyproject  # the ENTRYPOINT's console script


def test_the_build_context_is_only_what_the_image_needs() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored  # everything is out unless listed
    assert {"!app/", "!pyproject.toml", "!README.md", "!requirements/"} <= set(ignored)


def test_the_base_image_is_pinned_by_digest_and_a_build_can_still_replace_it() -> None:
    text = DOCKERFILE.read_text()
    pinned = re.findall(r"^ARG BASE_IMAGE=(python:3\.11-slim-bookworm@sha256:[0-9a-f]{64})$", text, re.MULTILINE)
    assert len(pinned) == 1
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BASE_IMAGE}", "builder", "${BASE_IMAGE}"]


def test_every_package_comes_from_a_hash_lock_and_nothing_is_resolved_in_the_build() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG LOCK=requirements/image\.lock$", text, re.MULTILINE)
    installs = re.findall(r"pip install ([^\n&]+)", text)
    assert installs == ['--require-hashes --no-deps --requirement "${LOCK}"', "--no-deps --no-build-isolation . "]
    assert "pip check" in text  # what --no-deps skipped is still verified: every requirement met by the lock
    assert "COPY requirements/ ./requirements/" in text
