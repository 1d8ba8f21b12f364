"""Facts that live in both Python and the chart's templates agree: the templates are rendered by Helm and compared."""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from app.runtimes.choice import GPU_TAG_SUFFIX, IMAGE
from app.settings import ENV_PREFIX, load_settings
from app.threads import threads_for, threads_per_worker
from tests.chart.rendering import CHART, config_yaml, one, render, service_config
from tests.helpers import ROOT, load_script

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


def _service_env(documents: list[dict]) -> dict[str, dict]:
    """The service container's VISIONSERVE_* variables: name -> its env entry."""
    container = one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"] if e["name"].startswith(ENV_PREFIX)}


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("request_cpu", ["500m", 1, "1500m", 2, "2500m", 4])
def test_without_a_cpu_limit_threads_follow_the_request_through_the_downward_api(
    request_cpu: str | float, workers: int, tmp_path: Path
) -> None:
    """No CPU limit: the chart leaves torch_threads to the service, which divides the request the downward API gives."""
    values: dict = {"resources": {"requests": {"cpu": request_cpu, "memory": "1Gi"}, "limits": {"memory": "2Gi"}}}
    if workers > 1:
        values["gpu"] = {"enabled": True, "count": workers}
    documents = render(values)
    assert "cpu" not in one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert service_config(documents, tmp_path).torch_threads == 0
    field = _service_env(documents)["VISIONSERVE_CPU_REQUEST_MILLICORES"]["valueFrom"]["resourceFieldRef"]
    assert field == {"containerName": "visionserve", "resource": "requests.cpu", "divisor": "1m"}
    # what the kubelet writes into the variable: the request in millicores (divisor 1m)
    millicores = str(round(_cores(request_cpu) * 1000))
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(documents))
    settings = load_settings(environ={"VISIONSERVE_CPU_REQUEST_MILLICORES": millicores}, config_file=config)
    (tmp_path / "cpu.max").write_text("max 100000\n")  # no CFS quota: the container has no CPU limit
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("app.threads.CPU_MAX", tmp_path / "cpu.max")
        assert threads_per_worker(settings) == threads_for(_cores(request_cpu), workers)


def test_the_chart_owns_exactly_the_keys_the_schema_generator_leaves_out() -> None:
    documents = render()
    rendered = set(yaml.safe_load(config_yaml(documents)))
    from_env = {name.removeprefix(ENV_PREFIX).lower() for name in _service_env(documents)}
    with helm.Chart.load(CHART) as chart:
        user_keys = set(chart.values["config"])
    assert (rendered - user_keys) | from_env == set(chart_schema.CHART_OWNED)
    assert not rendered & from_env
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
    assert {key: wins.get(key) for key in attempt} == {key: defaults.get(key) for key in attempt}
    assert "set-by-user" not in wins.values()


def test_the_chart_wins_even_where_its_value_is_empty(tmp_path: Path) -> None:
    """An owned key the chart sets to 0 (or "") is not replaced by a user's value, schema skipped or not."""
    unchecked = tmp_path / "visionserve"
    shutil.copytree(CHART, unchecked, ignore=shutil.ignore_patterns("values.schema.json"))
    values = {"shutdown": {"drainSeconds": 0}, "config": {"drain_seconds": 9}}
    assert yaml.safe_load(config_yaml(render(values, chart_dir=unchecked)))["drain_seconds"] == 0


def test_the_image_the_service_names_for_cuda_is_the_charts_default() -> None:
    """The service's message for device=cuda without CUDA names the image the chart runs by default."""
    with helm.Chart.load(CHART) as chart:
        assert chart.values["image"]["repository"] == IMAGE
        assert chart.values["gpu"]["imageTagSuffix"] == GPU_TAG_SUFFIX
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    variants = {v["variant"]: v["suffix"] for v in release["jobs"]["image"]["strategy"]["matrix"]["include"]}
    assert variants == {"cpu": "", "gpu": GPU_TAG_SUFFIX}
