"""scripts/kind_demo.py (`make kind-demo`): its commands in a dry run, and the values it installs, rendered.

No kind cluster runs here: CI's kind job runs the script for real. The image build itself is tested with podman
in tests/container.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from app.cli import build_parser
from tests.chart.rendering import CHART, kinds, one, render, values_of
from tests.helpers import ROOT, load_script

SCRIPT = ROOT / "scripts" / "kind_demo.py"
IMAGE = "localhost/visionserve:kind"


def _dry_run(*args: str) -> list[str]:
    command = [sys.executable, str(SCRIPT), "--dry-run", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [line.removeprefix("+ ") for line in done.stdout.splitlines() if line.startswith("+ ")]


def test_with_docker_it_builds_loads_installs_waits_and_smoke_tests_in_that_order() -> None:
    commands = _dry_run("--engine", "docker")
    assert commands[:4] == [
        f"docker build --build-arg FETCH_WEIGHTS=false --tag {IMAGE} .",
        "kind get clusters",
        "kind create cluster --name visionserve --wait 120s",
        f"kind load docker-image {IMAGE} --name visionserve",
    ]
    helm = shlex.split(commands[4])
    assert helm[:7] == [
        "helm",
        "upgrade",
        "--install",
        "visionserve",
        "charts/visionserve",
        "--namespace",
        "visionserve",
    ]
    assert "--wait" in helm and "image.pullPolicy=Never" in helm
    assert "image.repository=localhost/visionserve" in helm and "image.tag=kind" in helm
    assert helm[helm.index("--values") + 1] == "charts/visionserve/ci/kind-demo-values.yaml"
    assert commands[5].startswith("kubectl --namespace visionserve rollout status deployment/visionserve")
    assert commands[6] == "kubectl --namespace visionserve port-forward service/visionserve 8080:80 &"
    assert commands[7].endswith("-m app.cli smoke-test --url http://127.0.0.1:8080 --timeout 120")
    assert len(commands) == 8


def test_with_podman_the_image_goes_through_an_archive() -> None:
    commands = _dry_run("--engine", "podman")
    assert commands[0].startswith("podman build ")
    assert f"podman save --output /tmp/visionserve-kind.tar {IMAGE}" in commands
    assert "kind load image-archive /tmp/visionserve-kind.tar --name visionserve" in commands
    assert not any("docker" in command for command in commands)


def test_ci_layers_its_values_creates_the_key_and_checks_more() -> None:
    commands = _dry_run(
        "--namespace", "ci", "--values", "charts/visionserve/ci/kind-values.yaml",
        "--api-keys-secret", "keys", "--ci-checks", "--engine", "docker",
    )  # fmt: skip
    assert "kubectl apply --filename -" in commands  # the Secret: its key is never printed
    helm = shlex.split(next(c for c in commands if c.startswith("helm upgrade")))
    values = [helm[i + 1] for i, word in enumerate(helm) if word == "--values"]
    assert values == ["charts/visionserve/ci/kind-demo-values.yaml", "charts/visionserve/ci/kind-values.yaml"]
    assert "helm test visionserve --namespace ci --logs --timeout 10m" in commands
    assert "kubectl --namespace ci port-forward service/visionserve-metrics 9090:9090 &" in commands
    assert commands[-1].endswith("--metrics-url http://127.0.0.1:9090")


@pytest.mark.parametrize("ci", [False, True])
def test_the_smoke_test_it_runs_is_a_valid_visionserve_command(ci: bool) -> None:
    script = load_script("kind_demo")
    command = script.smoke_test_command(script.parse_args(["--ci-checks"] if ci else []))
    assert command[:2] == ["visionserve", "smoke-test"]
    build_parser().parse_args(command[1:])  # exits 2 on a wrong flag


def test_without_the_tools_it_names_them_and_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--engine", "podman"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 2
    assert "kind-demo needs podman, kind, kubectl, helm on the PATH" in done.stderr


def _demo_values(*more: str) -> dict:
    values = values_of(CHART / "ci" / "kind-demo-values.yaml")
    for name in more:
        for key, value in values_of(CHART / "ci" / name).items():
            values[key] = value
    return {**values, "image": {"repository": "localhost/visionserve", "tag": "kind", "pullPolicy": "Never"}}


@pytest.mark.parametrize("more", [(), ("kind-values.yaml",)], ids=["laptop", "ci"])
def test_what_it_installs_is_one_small_pod_with_random_weights(more: tuple[str, ...]) -> None:
    documents = render(_demo_values(*more))
    for doc in documents:
        if doc["kind"] not in {"ServiceMonitor", "PrometheusRule"}:
            kubernetes_validate.validate(doc, "1.37.0", strict=True)
    deployment = one(documents, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert not {"HorizontalPodAutoscaler", "PodDisruptionBudget"} & kinds(documents)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "Never"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1536Mi"}
    config = one(documents, "ConfigMap")["data"]["config.yaml"]
    assert "weights: random" in config and "cifar_head: random" in config
