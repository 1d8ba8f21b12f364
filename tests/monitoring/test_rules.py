"""Alert rules: valid for promtool, unit-tested alert by alert, documented in the runbook."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.helpers import require_tool
from tests.monitoring.files import ALERT_TESTS, ALERTS, MONITORING, SLO_ALERT_TESTS, alerts

REQUIRED_ALERTS = {
    "VisionserveDown",
    "VisionserveNoReadyReplicas",
    "VisionserveHighErrorRatio",
    "VisionserveLatencyP95High",
    "VisionserveLatencyP99High",
    "VisionserveQueueSaturated",
    "VisionserveShedding",
    "VisionserveHPAMaxedOut",
    "VisionservePodRestarting",
    "VisionserveOOMKilled",
    "VisionserveModelNotReady",
    "VisionserveAvailabilityBudgetBurnFast",
    "VisionserveAvailabilityBudgetBurnSlow",
    "VisionserveLatencyBudgetBurnFast",
    "VisionserveLatencyBudgetBurnSlow",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=300, check=False)


def test_promtool_checks_the_rules() -> None:
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    """Both test files at once, one promtool each (each keeps about one core busy)."""
    runs = [
        subprocess.Popen([require_tool("promtool"), "test", "rules", str(path)], stdout=subprocess.PIPE, text=True)
        for path in (ALERT_TESTS, SLO_ALERT_TESTS)
    ]
    try:
        outputs = [run.communicate(timeout=300)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()  # a no-op once it has exited
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output


def test_promtool_unit_tests_can_fail(tmp_path) -> None:
    """A broken expectation is caught: the unit tests are live, not decorative."""
    broken = yaml.safe_load(ALERT_TESTS.read_text())
    broken["rule_files"] = [str(ALERTS)]
    broken["tests"] = broken["tests"][:1]
    broken["tests"][0]["alert_rule_test"][-1]["exp_alerts"] = []  # claims VisionserveDown stays silent
    path = tmp_path / "broken_test.yaml"
    path.write_text(yaml.safe_dump(broken))
    done = promtool("test", "rules", str(path))
    assert done.returncode != 0


def test_every_required_alert_exists_with_severity_summary_description_and_runbook() -> None:
    found = {rule["alert"]: rule for rule in alerts()}
    assert set(found) >= REQUIRED_ALERTS
    for name, rule in found.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key), (name, key)


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    fired, silent = set(), set()
    cases = [case for path in (ALERT_TESTS, SLO_ALERT_TESTS) for case in yaml.safe_load(path.read_text())["tests"]]
    for case in cases:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "never shown firing"
    assert names - silent == set(), "never shown silent"


def test_every_runbook_url_points_at_a_runbook_section() -> None:
    runbook = (MONITORING / "RUNBOOK.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^## (.+)$", runbook, flags=re.MULTILINE)
    }
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("https://github.com/visionserve/visionserve/blob/main/monitoring/RUNBOOK.md#")
        assert url.split("#", 1)[1] in anchors, rule["alert"]


def test_burn_rate_alerts_use_two_windows_each() -> None:
    for rule in alerts():
        if "BudgetBurn" in rule["alert"]:
            windows = set(re.findall(r"ratio_rate(\d+[mhd])", rule["expr"]))
            assert len(windows) == 4 and re.search(r"\band\b", rule["expr"]), rule["alert"]
            assert re.search(r"\bor\b", rule["expr"]), rule["alert"]


def test_the_local_prometheus_config_is_valid() -> None:
    done = promtool("check", "config", str(MONITORING / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
