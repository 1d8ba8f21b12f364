"""Facts that live in both Python and the chart's templates agree: the templates are rendered by Helm and compared."""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from app.threads import threads_for
from tests.chart.rendering import CHART, config_yaml, one, render, service_config
from tests.helpers import load_script

rollout_check = load_script("rollout_check")
chart_schema = load_script("chart_schema")


def _cores(cpu: str | float) -> float:
    """A Kubernetes CPU quantity in cores: what the kubelet writes as the container's cgroup quota."""
    return int(cpu.removesuffix("m")) / 1000 if isinstance(cpu, str) and cpu.endswith("m") else float(cpu)


@pytest.mark.parametrize(
    "release",
    ["visionserve", "prod", "my-visionserve-prod", "a" * 60, "b" * 51, "c" * 52, "d" * 63, "e" * 62],
)
def test_rollout_checks_fullname_is_the_deployments_name(release: str) -> None:
    deployment = one(render({}, release=release), "Deployment")
    assert deployment["metadata"]["name"] == rollout_check.chart_fullname(release)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("cpu", ["500m", 1, "1500m", 1.5, 2, "2500m", 4, "7900m"])
def test_torch_threads_follow_the_cpu_limit(cpu: str | float, workers: int, tmp_path: Path) -> None:
    """The chart's torch_threads is the service's own formula on the same quota and worker count."""
    values: dict = {
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": cpu, "memory": "2Gi"}}
    }
    if workers > 1:
        values["gpu"] = {"enabled": True, "count": workers}
    settings = service_config(render(values), tmp_path)
    assert settings.workers == workers
    assert settings.torch_threads == threads_for(_cores(cpu), workers)


def test_the_chart_owns_exactly_the_keys_the_schema_generator_leaves_out() -> None:
    rendered = set(yaml.safe_load(config_yaml(render())))
    with helm.Chart.load(CHART) as chart:
        user_keys = set(chart.values["config"])
    assert rendered - user_keys == set(chart_schema.CHART_OWNED)
    assert not user_keys & set(chart_schema.CHART_OWNED)


@pytest.mark.parametrize("key", chart_schema.CHART_OWNED)
def test_the_schema_refuses_a_chart_owned_key_in_config(key: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError, match=key):
        chart.validate_schema({"config": {key: 1}})


def test_the_chart_wins_when_the_schema_is_skipped(tmp_path: Path) -> None:
    """With --skip-schema-validation a user's config cannot override what the chart sets either."""
    unchecked = tmp_path / "visionserve"
    shutil.copytree(CHART, unchecked, ignore=shutil.ignore_patterns("values.schema.json"))
    attempt = {key: "set-by-user" for key in chart_schema.CHART_OWNED}
    defaults = yaml.safe_load(config_yaml(render()))
    wins = yaml.safe_load(config_yaml(render({"config": attempt}, chart_dir=unchecked)))
    assert {key: wins[key] for key in attempt} == {key: defaults[key] for key in attempt}
    assert "set-by-user" not in wins.values()


def test_the_chart_wins_even_where_its_value_is_empty(tmp_path: Path) -> None:
    """An owned key the chart sets to 0 (or "") is not replaced by a user's value, schema skipped or not."""
    unchecked = tmp_path / "visionserve"
    shutil.copytree(CHART, unchecked, ignore=shutil.ignore_patterns("values.schema.json"))
    values = {"shutdown": {"drainSeconds": 0}, "config": {"drain_seconds": 9}}
    assert yaml.safe_load(config_yaml(render(values, chart_dir=unchecked)))["drain_seconds"] == 0
