"""Grafana dashboards: a $datasource variable, no hard-coded UID, namespace/pod templating, real metric names."""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.harness.local_server import LocalServer
from tests.monitoring.files import ALERTS, DASHBOARDS, METRIC, dashboard, panel_queries
from tests.server.metrics_text import samples

EXPECTED_PANELS = {
    "overview.json": {"Request rate by status", "5xx error ratio", "Latency p50 / p95 / p99", "Requests in flight"},
    "model-batching.json": {
        "Batch size distribution",
        "Queue wait p50 / p95",
        "Inference time per batch p50 / p95",
        "Rejections by reason",
        "Predictions per head",
        "Response cache hit ratio",
        "Response cache hits, misses and evictions",
        "Response cache entries",
        "Response cache memory",
    },
    "resources-scaling.json": {"CPU per pod", "Memory per pod", "Replicas against the HPA bounds"},
}


def test_the_three_dashboards_exist_with_their_panels() -> None:
    assert {path.name for path in DASHBOARDS} == set(EXPECTED_PANELS)
    for path in DASHBOARDS:
        titles = {panel["title"] for panel in dashboard(path)["panels"]}
        assert EXPECTED_PANELS[path.name] <= titles, path.name


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_datasource_is_a_variable_never_a_uid(path) -> None:
    board = dashboard(path)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "job", "pod"} <= set(variables)
    assert '{namespace=~"$namespace"}, job)' in variables["job"]["query"]["query"]  # jobs of the namespace
    assert 'job=~"$job"' in variables["pod"]["query"]["query"]  # pods of the jobs picked

    def datasources(node: object) -> list[dict]:
        if isinstance(node, dict):
            found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
            return found + [d for value in node.values() for d in datasources(value)]
        if isinstance(node, list):
            return [d for item in node for d in datasources(item)]
        return []

    assert {d.get("uid") for d in datasources(board)} == {"${datasource}"}
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    for title, expr in panel_queries(path):
        if "visionserve_" in expr and "kube_" not in expr:
            assert "$namespace" in expr and "$pod" in expr, title
        for selector in re.findall(r"visionserve_\w+\{[^}]*\}", expr):
            assert 'job=~"$job"' in selector, (title, selector)  # two releases in a namespace stay apart


def test_every_metric_in_rules_and_dashboards_is_exported(server: LocalServer, jpeg_bytes: bytes) -> None:
    answer = requests.post(
        f"{server.url}/v1/predict", data=jpeg_bytes, headers={"Content-Type": "image/jpeg"}, timeout=60
    )  # request series exist once a request was counted
    assert answer.status_code == 200
    exported = {name for name, _, _ in samples(server.url)}
    used = set(METRIC.findall(ALERTS.read_text()))
    for path in DASHBOARDS:
        used |= set(METRIC.findall(json.dumps(dashboard(path))))
    assert used, "no visionserve metric found"
    assert used - exported == set()
