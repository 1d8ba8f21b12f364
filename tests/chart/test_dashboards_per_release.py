"""Each release's dashboards show that release alone: two releases in one namespace, every panel's query evaluated
by promtool over release a's series as Grafana would send it. a's panels all find data; b's find none."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.chart.rendering import render
from tests.helpers import require_tool

DASHBOARDS_ON = {"monitoring": {"dashboards": {"enabled": True}}}
SELECTOR = re.compile(r"\b([a-z_:]+)\{")
# labels every visionserve series carries here: each panel's own matchers (route, status, reason, le) find a match
SERVICE_LABELS = {
    "route": "/v1/predict",
    "method": "POST",
    "status": "500",
    "reason": "deadline_exceeded",
    "le": "+Inf",
    "head": "imagenet",
    "stage": "queue",
    "bound": "entries",
}


def _boards(release: str) -> list[dict]:
    return [
        json.loads(text)
        for doc in render(DASHBOARDS_ON, release=release)
        if doc["kind"] == "ConfigMap" and "grafana_dashboard" in doc["metadata"]["labels"]
        for text in doc["data"].values()
    ]


def _queries(board: dict) -> list[str]:
    """Each panel's PromQL as Grafana sends it: constants by value, "All" pods by the variable's allValue."""
    variables = {v["name"]: v for v in board["templating"]["list"]}
    values = {name: v["query"] for name, v in variables.items() if v["type"] == "constant"}
    values["pod"] = variables["pod"]["allValue"]
    queries = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m")
            for name, value in values.items():
                expr = expr.replace(f"${name}", value)
            assert "$" not in expr, expr
            queries.append(expr)
    return queries


def _series_of(board: dict, metrics: set[str]) -> list[dict]:
    """The release's own series, one per metric its panels read (two for the cpu and memory resource series)."""
    variables = {v["name"]: v for v in board["templating"]["list"]}
    namespace, job = variables["namespace"]["query"], variables["job"]["query"]
    pod = variables["pod"]["allValue"].replace("[a-z0-9]+-[a-z0-9]+", "7d9f8c6b5-x2x4z")  # one of the release's pods
    assert re.fullmatch(variables["pod"]["allValue"], pod), pod
    series = []
    for metric in sorted(metrics):
        if metric.startswith("visionserve_"):
            labels = {"namespace": namespace, "job": job, "pod": pod, **SERVICE_LABELS}
        elif metric == "up":
            labels = {"namespace": namespace, "job": job}
        elif metric.startswith("kube_horizontalpodautoscaler"):
            labels = {"namespace": namespace, "horizontalpodautoscaler": pod.rsplit("-", 2)[0]}
        else:
            labels = {"namespace": namespace, "pod": pod, "container": "visionserve"}
        for resource in ("cpu", "memory") if "resource" in metric else (None,):
            with_resource = {**labels, "resource": resource} if resource else labels
            selector = ", ".join(f'{key}="{value}"' for key, value in with_resource.items())
            series.append({"series": f"{metric}{{{selector}}}", "values": "1+1x30"})
    return series


def _promtool(cases: list[dict], series: list[dict], workdir: Path, name: str) -> subprocess.CompletedProcess:
    rules = workdir / "none.yaml"
    rules.write_text("groups: []\n")
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": cases}],
    }
    path = workdir / f"{name}_test.yaml"
    path.write_text(yaml.safe_dump(test, width=10_000))
    command = [require_tool("promtool"), "test", "rules", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_two_releases_in_one_namespace_each_see_their_own_series_only(tmp_path: Path) -> None:
    boards_a, boards_b = _boards("a"), _boards("b")
    queries_a = [q for board in boards_a for q in _queries(board)]
    queries_b = [q for board in boards_b for q in _queries(board)]
    assert len(queries_a) == len(queries_b) > 30
    assert not any(".*visionserve.*" in q for q in queries_a + queries_b)  # nothing matches by name any more
    series = _series_of(boards_a[0], {m for q in queries_a for m in SELECTOR.findall(q)})
    # absent(q) is empty exactly when q has data: every one of a's panels shows a's series
    found = [{"expr": f"absent({q})", "eval_time": "20m", "exp_samples": []} for q in queries_a]
    done = _promtool(found, series, tmp_path, "a")
    assert done.returncode == 0, done.stdout + done.stderr
    # and none of b's panels shows any of them
    empty = [{"expr": q, "eval_time": "20m", "exp_samples": []} for q in queries_b]
    done = _promtool(empty, series, tmp_path, "b")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_is_live_unscoped_variables_show_every_release(tmp_path: Path) -> None:
    """b's boards with the files' own variables (any job, any pod) do show release a's series: the check then fails."""
    boards_b = _boards("b")
    for board in boards_b:
        for variable in board["templating"]["list"]:
            if variable["name"] == "job":
                variable["query"] = ".*"
            elif variable["name"] == "pod":
                variable["allValue"] = ".*"
    queries_b = [q for board in boards_b for q in _queries(board)]
    series = _series_of(_boards("a")[0], {m for q in queries_b for m in SELECTOR.findall(q)})
    empty = [{"expr": q, "eval_time": "20m", "exp_samples": []} for q in queries_b]
    assert _promtool(empty, series, tmp_path, "unscoped").returncode != 0
