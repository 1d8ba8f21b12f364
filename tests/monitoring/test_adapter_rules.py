"""monitoring/prometheus-adapter-values.yaml: the Pods metrics the chart's HPA asks for, on metrics the service has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.helpers import load_script, require_tool
from tests.monitoring.files import MONITORING

ADAPTER = MONITORING / "prometheus-adapter-values.yaml"
chart_schema = load_script("chart_schema")


def _rules() -> list[dict]:
    return yaml.safe_load(ADAPTER.read_text())["rules"]["custom"]


def test_the_adapter_serves_exactly_the_metrics_the_chart_scales_on() -> None:
    names = [rule["name"]["as"] for rule in _rules()]
    assert sorted(names) == sorted(chart_schema.SCALING_METRICS)
    for rule in _rules():
        series = re.match(r"^(\w+)\{", rule["seriesQuery"]).group(1)
        assert series == rule["name"]["as"]  # a per-pod gauge under its own name
        assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}


def test_the_metrics_exist_in_the_service() -> None:
    metrics_source = (MONITORING.parent / "app" / "metrics.py").read_text()
    for rule in _rules():
        assert f'"{rule["name"]["as"]}"' in metrics_source


def test_the_metrics_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each metricsQuery as the adapter expands it for one pod, checked by promtool as a recording rule."""
    rules = [
        {
            "record": f"adapter:{rule['name']['as']}",
            "expr": rule["metricsQuery"]
            .replace("<<.Series>>", rule["name"]["as"])
            .replace("<<.LabelMatchers>>", 'namespace="ml", pod=~"visionserve-.*"')
            .replace("<<.GroupBy>>", "pod"),
        }
        for rule in _rules()
    ]
    path = tmp_path / "adapter.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "adapter", "rules": rules}]}))
    done = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
