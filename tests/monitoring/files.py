"""The monitoring files, parsed once (helpers for the monitoring tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.helpers import ROOT

MONITORING = ROOT / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
ALERT_TESTS = MONITORING / "alerts_test.yaml"
SLO_ALERT_TESTS = MONITORING / "alerts_slo_test.yaml"  # the one- and three-day burns, at a coarser step
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
METRIC = re.compile(r"\bvisionserve_[a-z_]+\b")


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard(path: Path) -> dict:
    return json.loads(path.read_text())


def panel_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    return [(panel["title"], target["expr"]) for panel in dashboard(path)["panels"] for target in panel["targets"]]
