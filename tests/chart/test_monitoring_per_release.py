"""Monitoring per release: rules scoped to the release (promtool proves it), per-alert switches, dashboard UIDs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart.rendering import CHART, NAMESPACE, notes, one, render, values_of
from tests.helpers import ROOT, require_tool

ALERTS = ROOT / "monitoring" / "alerts.yaml"
DASHBOARDS = ROOT / "monitoring" / "dashboards"
RULES_ON = {"monitoring": {"prometheusRule": {"enabled": True}}}
# A vector selector of a metric the rules read, with its matchers when it has any.
SELECTOR = re.compile(r"\b(visionserve[_:][a-z0-9_:]+|kube_[a-z_]+|up)\b(\{[^}]*\})?")


def _rules(values: dict, release: str = "visionserve") -> list[dict]:
    return [
        rule
        for group in one(render(values, release=release), "PrometheusRule")["spec"]["groups"]
        for rule in group["rules"]
    ]


def _scoped(expr: str, job: str, deployment: str, hpa: str) -> str:
    """The source expression with its four matchers narrowed to one release, worked out here independently."""
    for matcher, own in (
        ('job=~".*visionserve.*"', f'namespace="{NAMESPACE}", job="{job}"'),
        ('deployment=~".*visionserve.*"', f'namespace="{NAMESPACE}", deployment="{deployment}"'),
        ('horizontalpodautoscaler=~".*visionserve.*"', f'namespace="{NAMESPACE}", horizontalpodautoscaler="{hpa}"'),
        ('pod=~".*visionserve.*"', f'namespace="{NAMESPACE}", pod=~"{deployment}-[a-z0-9]+-[a-z0-9]+"'),
    ):
        expr = expr.replace(matcher, own)
    return expr


def test_the_rules_are_the_monitoring_file_with_the_releases_own_selectors() -> None:
    """Drift check: the chart's rules are monitoring/alerts.yaml, rule for rule, only the selectors narrowed."""
    source = yaml.safe_load(ALERTS.read_text())["groups"]
    rendered = one(render(RULES_ON), "PrometheusRule")["spec"]["groups"]
    assert [g["name"] for g in rendered] == [g["name"] for g in source]
    for mine, theirs in zip(rendered, source, strict=True):
        assert len(mine["rules"]) == len(theirs["rules"])
        for rule, original in zip(mine["rules"], theirs["rules"], strict=True):
            expected = {
                **original,
                "expr": _scoped(original["expr"], "visionserve-metrics", "visionserve", "visionserve"),
            }
            assert rule == expected


@pytest.mark.parametrize(
    "values",
    [RULES_ON, {**RULES_ON, "fullnameOverride": "classifier"}, {**RULES_ON, "metrics": {"port": 0}}],
    ids=["default", "fullnameOverride", "metrics-on-http"],
)
def test_every_selector_names_the_releases_namespace_and_target(values: dict) -> None:
    fullname = values.get("fullnameOverride", "visionserve")
    for rule in _rules(values):
        for metric, matchers in SELECTOR.findall(rule["expr"]):
            assert f'namespace="{NAMESPACE}"' in matchers, (rule.get("alert") or rule["record"], metric)
            assert ".*visionserve.*" not in matchers
            assert re.search(rf'(job|deployment|horizontalpodautoscaler|pod)=~?"{fullname}', matchers), metric


def test_the_job_follows_the_scrape_object_or_the_value() -> None:
    def down(values: dict) -> str:
        return next(r["expr"] for r in _rules(values) if r.get("alert") == "VisionserveDown")

    assert 'job="visionserve-metrics"' in down(RULES_ON)
    assert 'job="visionserve"' in down({**RULES_ON, "metrics": {"port": 0}})
    podmonitor = {"monitoring": {"prometheusRule": {"enabled": True}, "podMonitor": {"enabled": True}}}
    assert f'job="{NAMESPACE}/visionserve"' in down(podmonitor)
    assert 'job="kubernetes-pods"' in down(
        {"monitoring": {"prometheusRule": {"enabled": True, "job": "kubernetes-pods"}}}
    )
    keda = {**RULES_ON, "autoscaling": {"keda": {"enabled": True}}}
    hpa = next(r["expr"] for r in _rules(keda) if r.get("alert") == "VisionserveHPAMaxedOut")
    assert 'horizontalpodautoscaler="keda-hpa-visionserve"' in hpa


def test_alerts_can_be_disabled_and_labelled() -> None:
    values = values_of(CHART / "ci" / "podmonitor-values.yaml")
    rules = {rule.get("alert"): rule for rule in _rules(values)}
    assert "VisionserveAuthFailures" not in rules
    assert rules["VisionserveDown"]["labels"] == {"severity": "page", "team": "vision"}
    assert rules["VisionserveShedding"]["labels"] == {"severity": "warning", "team": "vision"}
    assert all("labels" not in rule for name, rule in rules.items() if name is None)  # recording rules untouched
    group_names = [g["name"] for g in one(render(values), "PrometheusRule")["spec"]["groups"]]
    assert "visionserve.security" not in group_names  # its only alert is off: no empty group


def test_a_misspelt_alert_name_fails_at_install() -> None:
    import helm_python as helm

    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError, match="VisionserveDwn"):
        chart.validate_schema({"monitoring": {"prometheusRule": {"disabled": {"VisionserveDwn": True}}}})


def _promtool_case(
    rule_file: Path, series: list[dict], checks: list[dict], workdir: Path
) -> subprocess.CompletedProcess:
    test = {
        "rule_files": [str(rule_file)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    path = workdir / f"{rule_file.stem}_test.yaml"
    path.write_text(yaml.safe_dump(test))
    return subprocess.run(
        [require_tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=600, check=False
    )


def _fired(rule: dict, labels: dict) -> dict:
    """What promtool expects of one firing alert: its labels, and its annotations with $labels filled in."""
    annotations = {
        key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)
        for key, text in rule["annotations"].items()
    }
    return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": annotations}


def test_two_releases_and_a_renamed_one_each_alert_on_their_own_series_only(tmp_path: Path) -> None:
    """Releases a and b in one namespace, and c renamed by fullnameOverride: a is down and restarting, b has no ready
    pod, c is healthy. Each release's rules, evaluated by promtool over everyone's series, fire for itself alone."""
    ns = NAMESPACE
    pod_a = "a-visionserve-7d9f8c6b5-x2x4z"
    series = [
        {"series": f'up{{namespace="{ns}", job="a-visionserve-metrics"}}', "values": "0x20"},
        {"series": f'up{{namespace="{ns}", job="b-visionserve-metrics"}}', "values": "1x20"},
        {"series": f'up{{namespace="{ns}", job="classifier-metrics"}}', "values": "1x20"},
        {
            "series": f'kube_deployment_status_replicas_available{{namespace="{ns}", deployment="a-visionserve"}}',
            "values": "3x20",
        },
        {"series": f'kube_deployment_spec_replicas{{namespace="{ns}", deployment="a-visionserve"}}', "values": "3x20"},
        {
            "series": f'kube_deployment_status_replicas_available{{namespace="{ns}", deployment="b-visionserve"}}',
            "values": "0x20",
        },
        {"series": f'kube_deployment_spec_replicas{{namespace="{ns}", deployment="b-visionserve"}}', "values": "3x20"},
        {
            "series": f'kube_deployment_status_replicas_available{{namespace="{ns}", deployment="classifier"}}',
            "values": "3x20",
        },
        {"series": f'kube_deployment_spec_replicas{{namespace="{ns}", deployment="classifier"}}', "values": "3x20"},
        {
            "series": "kube_pod_container_status_restarts_total"
            f'{{namespace="{ns}", pod="{pod_a}", container="visionserve"}}',
            "values": "0+1x20",
        },
    ]
    expected = {
        "a": {
            "VisionserveDown": [{"namespace": ns, "job": "a-visionserve-metrics"}],
            "VisionserveNoReadyReplicas": [],
            "VisionservePodRestarting": [{"namespace": ns, "pod": pod_a, "container": "visionserve"}],
        },
        "b": {
            "VisionserveDown": [],
            "VisionserveNoReadyReplicas": [{"namespace": ns, "deployment": "b-visionserve"}],
            "VisionservePodRestarting": [],
        },
        "c": {"VisionserveDown": [], "VisionserveNoReadyReplicas": [], "VisionservePodRestarting": []},
    }
    for release, alerts in expected.items():
        values = {**RULES_ON, **({"fullnameOverride": "classifier"} if release == "c" else {})}
        spec = one(render(values, release=release), "PrometheusRule")["spec"]
        rule_file = tmp_path / f"{release}.yaml"
        rule_file.write_text(yaml.safe_dump(spec))
        by_name = {rule["alert"]: rule for group in spec["groups"] for rule in group["rules"] if "alert" in rule}
        checks = [
            {"eval_time": "20m", "alertname": name, "exp_alerts": [_fired(by_name[name], labels) for labels in firing]}
            for name, firing in alerts.items()
        ]
        done = _promtool_case(rule_file, series, checks, tmp_path)
        assert done.returncode == 0, (release, done.stdout + done.stderr)


def test_the_promtool_check_is_live(tmp_path: Path) -> None:
    """Release b's rules do not claim release a's down target: the same check fails when told they do."""
    spec = one(render(RULES_ON, release="b"), "PrometheusRule")["spec"]
    rule_file = tmp_path / "b.yaml"
    rule_file.write_text(yaml.safe_dump(spec))
    down = next(rule for group in spec["groups"] for rule in group["rules"] if rule.get("alert") == "VisionserveDown")
    series = [
        {"series": f'up{{namespace="{NAMESPACE}", job="a-visionserve-metrics"}}', "values": "0x20"},
        {"series": f'up{{namespace="{NAMESPACE}", job="b-visionserve-metrics"}}', "values": "1x20"},
    ]
    wrong = {"namespace": NAMESPACE, "job": "a-visionserve-metrics"}
    checks = [{"eval_time": "20m", "alertname": "VisionserveDown", "exp_alerts": [_fired(down, wrong)]}]
    assert _promtool_case(rule_file, series, checks, tmp_path).returncode != 0


def _dashboards(documents: list[dict]) -> dict[str, dict]:
    return {
        key: json.loads(text)
        for doc in documents
        if doc["kind"] == "ConfigMap" and "grafana_dashboard" in doc["metadata"]["labels"]
        for key, text in doc["data"].items()
    }


def _scoped_to_the_release(original: dict) -> dict:
    """What the chart is to make of a dashboard file for the release `visionserve` (its metrics Service's job)."""
    text = json.dumps(original).replace(
        'horizontalpodautoscaler=~\\".*visionserve.*\\"', 'horizontalpodautoscaler=\\"visionserve\\"'
    )
    scoped = json.loads(text)
    constants = {"namespace": NAMESPACE, "job": "visionserve-metrics"}
    variables = []
    for variable in scoped["templating"]["list"]:
        name = variable["name"]
        if name in constants:
            variables.append(
                {"name": name, "label": variable["label"], "type": "constant", "query": constants[name], "hide": 2}
            )
            continue
        if name == "pod":
            variable["allValue"] = "visionserve-[a-z0-9]+-[a-z0-9]+"
        variables.append(variable)
    scoped["templating"]["list"] = variables
    return scoped


def test_dashboards_are_the_monitoring_json_scoped_to_the_release_with_its_uid_and_title() -> None:
    shipped = _dashboards(render({"monitoring": {"dashboards": {"enabled": True}}}))
    on_disk = {p.stem: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")}
    assert sorted(shipped) == sorted(f"{NAMESPACE}-visionserve-{name}.json" for name in on_disk)
    for name, original in on_disk.items():
        dashboard = shipped[f"{NAMESPACE}-visionserve-{name}.json"]
        assert {k: v for k, v in dashboard.items() if k not in ("uid", "title")} == {
            k: v for k, v in _scoped_to_the_release(original).items() if k not in ("uid", "title")
        }
        assert re.fullmatch(re.escape(original["uid"]) + "-[0-9a-f]{8}", dashboard["uid"])
        assert len(dashboard["uid"]) <= 40  # Grafana's limit
        assert dashboard["title"] == f"{original['title']} ({NAMESPACE}/visionserve)"


def test_two_releases_in_one_namespace_collide_nowhere() -> None:
    values = values_of(CHART / "ci" / "two-releases-values.yaml")
    first, second = render(values, release="a"), render(values, release="b")

    def names(documents: list[dict]) -> set[tuple[str, str]]:
        return {(doc["kind"], doc["metadata"]["name"]) for doc in documents}

    assert not names(first) & names(second)
    assert not {d["uid"] for d in _dashboards(first).values()} & {d["uid"] for d in _dashboards(second).values()}
    assert not {d["title"] for d in _dashboards(first).values()} & {d["title"] for d in _dashboards(second).values()}
    assert not set(_dashboards(first)) & set(_dashboards(second))  # the sidecar's file names
    selectors = [
        {m for rule in _rules(values, release) for _, m in SELECTOR.findall(rule["expr"])} for release in ("a", "b")
    ]
    assert selectors[0] and not selectors[0] & selectors[1]
    monitors = [one(docs, "ServiceMonitor")["spec"]["selector"]["matchLabels"] for docs in (first, second)]
    assert monitors[0]["app.kubernetes.io/instance"] == "a" and monitors[1]["app.kubernetes.io/instance"] == "b"


def test_a_pod_monitor_scrapes_the_releases_pods_on_the_metrics_port() -> None:
    documents = render(values_of(CHART / "ci" / "podmonitor-values.yaml"))
    monitor = one(documents, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"] == one(documents, "Deployment")["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert "ServiceMonitor" not in {doc["kind"] for doc in documents}


def test_the_notes_explain_the_release_label_when_it_is_missing() -> None:
    text = notes({"monitoring": {"serviceMonitor": {"enabled": True}}})
    assert "release: <the release name of kube-prometheus-stack>" in text
    labelled = {"enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}}
    assert "release: <the release name" not in notes({"monitoring": {"serviceMonitor": labelled}})
    assert "release: <the release name" not in notes()
