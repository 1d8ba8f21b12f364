"""scripts/rollout_check.py reads the expected HPA bounds from the release's own values, as the deploy job passes
them (`helm get values --all --output json`): rendered by the real chart, the HPA it creates is what the check
expects, for the production values files and for bounds that are not the chart's defaults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from tests.chart.rendering import CHART, one, render
from tests.helpers import ROOT, load_script
from tests.scripts.test_rollout_check import Snapshot, deployment_doc, healthy_pods, hpa_doc, run_main

rc = load_script("rollout_check")
DEPLOY_VALUES = ROOT / ".github" / "deploy"
PRODUCTION = [
    [DEPLOY_VALUES / "production-values.yaml"],
    [DEPLOY_VALUES / "production-values.yaml", DEPLOY_VALUES / "production-gpu-values.yaml"],
]
# what the deploy workflow's custom_metric input adds (for GPU values, whose HPA needs that metric)
CUSTOM_METRIC = {"autoscaling": {"enabled": True, "customMetric": {"enabled": True}}}


@pytest.fixture(scope="module")
def api_client() -> Iterator[ApiClient]:
    with ApiClient() as api:
        yield api


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of maps: the override's keys win, nested maps merge."""
    merged = dict(base)
    for key, value in override.items():
        both_maps = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both_maps else value
    return merged


def user_values(files: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in files:
        merged = _merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


def all_values(user: dict[str, Any]) -> dict[str, Any]:
    """What `helm get values --all` prints: the chart's defaults under the user's values."""
    return _merge(yaml.safe_load((CHART / "values.yaml").read_text()), user)


def _release_values_file(tmp_path: Path, user: dict[str, Any]) -> Path:
    path = tmp_path / "release-values.json"
    path.write_text(json.dumps(all_values(user)))
    return path


@pytest.mark.parametrize(
    "user",
    [
        {},
        {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}},
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 40}},
        user_values(PRODUCTION[0]),
        _merge(user_values(PRODUCTION[1]), CUSTOM_METRIC),
    ],
    ids=["chart-defaults", "2-6", "5-40", "production", "production-gpu-custom-metric"],
)
def test_the_rendered_hpa_is_what_the_release_values_expect(
    user: dict[str, Any], tmp_path: Path, api_client: ApiClient
) -> None:
    hpa = one(render(user), "HorizontalPodAutoscaler")
    values_file = _release_values_file(tmp_path, user)
    cluster_hpa = hpa_doc(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
    code, cluster, _ = run_main(
        api_client, [Snapshot(deployment_doc(), healthy_pods(), hpa=cluster_hpa)], "--release-values", str(values_file)
    )
    assert code == 0
    assert any(call[0] == "hpa" for call in cluster.calls)


def test_other_bounds_in_the_cluster_than_in_the_release_fail(
    tmp_path: Path, api_client: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    values_file = _release_values_file(tmp_path, {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}})
    snapshots = [Snapshot(deployment_doc(), healthy_pods(), hpa=hpa_doc(3, 10))]
    code, _, _ = run_main(api_client, snapshots, "--release-values", str(values_file))
    assert code == 1
    assert "expected minReplicas=2 maxReplicas=6" in capsys.readouterr().err


@pytest.mark.parametrize(
    "user",
    [{"autoscaling": {"enabled": False}, "replicaCount": 3}, user_values(PRODUCTION[1])],
    ids=["off", "production-gpu"],
)
def test_autoscaling_off_in_the_release_checks_no_hpa(
    user: dict[str, Any], tmp_path: Path, api_client: ApiClient
) -> None:
    assert not [doc for doc in render(user) if doc["kind"] == "HorizontalPodAutoscaler"]
    values_file = _release_values_file(tmp_path, user)
    code, cluster, _ = run_main(
        api_client, [Snapshot(deployment_doc(), healthy_pods(), hpa=None)], "--release-values", str(values_file)
    )
    assert code == 0
    assert not [call for call in cluster.calls if call[0] == "hpa"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({}, "no autoscaling.enabled"),
        ({"autoscaling": {"enabled": "yes"}}, "no autoscaling.enabled"),
        ({"autoscaling": {"enabled": True, "minReplicas": 3}}, "not integers"),
        ({"autoscaling": {"enabled": True, "minReplicas": True, "maxReplicas": 4}}, "not integers"),
    ],
)
def test_values_that_do_not_say_are_refused(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        rc.bounds_from_values(values)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [(None, "No such file"), ("- a list\n", "does not hold a mapping"), ("{}", "no autoscaling.enabled")],
)
def test_a_bad_release_values_file_exits_2(
    content: str | None, complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "values.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        rc.main(["--namespace", "ml", "--release", "prod", "--release-values", str(path)])
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no expectation at all: there is no built-in guess
        ["--expect-min-replicas", "3"],
        ["--no-hpa", "--expect-min-replicas", "3", "--expect-max-replicas", "10"],
    ],
)
def test_the_expected_hpa_is_said_exactly_once(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rc.main(["--namespace", "ml", "--release", "prod", *argv])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
