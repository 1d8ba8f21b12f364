"""Trivy's built-in misconfiguration checks: no HIGH or CRITICAL finding in the chart or the plain manifests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.chart.rendering import CHART, render
from tests.helpers import ROOT, require_tool


def _findings(trivy: str, target: Path) -> list[tuple[str, str, str]]:
    done = subprocess.run(
        [trivy, "config", "--skip-check-update", "--quiet", "--format", "json", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout)
    return [
        (result["Target"], item["Severity"], item["ID"])
        for result in report.get("Results", [])
        for item in result.get("Misconfigurations") or []
    ]


def test_chart_has_no_high_or_critical_findings() -> None:
    findings = _findings(require_tool("trivy"), CHART)
    assert not [f for f in findings if f[1] in ("HIGH", "CRITICAL")], findings


def test_every_ci_values_render_has_no_high_or_critical_findings(tmp_path: Path) -> None:
    trivy = require_tool("trivy")
    for values_file in sorted((CHART / "ci").glob("*-values.yaml")):
        documents = render(yaml.safe_load(values_file.read_text()) or {})
        (tmp_path / f"{values_file.stem}.yaml").write_text(yaml.safe_dump_all(documents))
    findings = _findings(trivy, tmp_path)
    assert not [f for f in findings if f[1] in ("HIGH", "CRITICAL")], findings


def test_trivy_does_flag_a_privileged_pod(tmp_path: Path) -> None:
    """The scan is live: the same check fails a manifest that runs as root with privilege escalation."""
    deployment = next(doc for doc in render() if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True, "allowPrivilegeEscalation": True, "runAsUser": 0}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(deployment))
    severities = {severity for _, severity, _ in _findings(require_tool("trivy"), tmp_path)}
    assert severities & {"HIGH", "CRITICAL"}


def test_plain_manifests_are_scanned_too() -> None:
    findings = _findings(require_tool("trivy"), ROOT / "kubernetes")
    assert not [f for f in findings if f[1] in ("HIGH", "CRITICAL")], findings
