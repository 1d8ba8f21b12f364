"""A trained CIFAR-10 head shipped into the pod without a PVC: from a ConfigMap, a Secret, or a URL with its sha256."""

from __future__ import annotations

import base64
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest

from app.cli import build_parser
from app.models.cifar_head import load_cifar_head_state
from app.models.weights import sha256_of
from tests.chart.rendering import CHART, one, render, service_config

DIGEST = "ab" * 32
MOUNT = "/var/lib/visionserve/cifar-head"
SOURCES = {
    "configMap": {"source": "configMap", "name": "cifar-head"},
    "secret": {"source": "secret", "name": "cifar-head"},
    "url": {"source": "url", "url": "https://artifacts.example.com/cifar10_head.pt", "sha256": DIGEST},
}


def _pod(documents: list[dict]) -> dict:
    return one(documents, "Deployment")["spec"]["template"]["spec"]


def _named(items: list[dict], name: str) -> dict:
    return next(item for item in items if item["name"] == name)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_head_is_mounted_and_config_cifar_head_points_at_it(source: str, tmp_path: Path) -> None:
    documents = render({"cifarHead": SOURCES[source]})
    for doc in documents:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    pod = _pod(documents)
    container = _named(pod["containers"], "visionserve")
    assert _named(container["volumeMounts"], "cifar-head") == {
        "name": "cifar-head",
        "mountPath": MOUNT,
        "readOnly": True,
    }
    settings = service_config(documents, tmp_path)
    assert settings.cifar_head == f"{MOUNT}/cifar10_head.pt"
    assert settings.cifar_head_sha256 == (DIGEST if source == "url" else "")


def test_from_a_configmap_only_its_key_is_mounted() -> None:
    volume = _named(_pod(render({"cifarHead": SOURCES["configMap"]}))["volumes"], "cifar-head")
    assert volume["configMap"] == {
        "name": "cifar-head",
        "items": [{"key": "cifar10_head.pt", "path": "cifar10_head.pt"}],
    }


def test_from_a_secret_the_file_is_read_only() -> None:
    volume = _named(_pod(render({"cifarHead": {**SOURCES["secret"], "sha256": DIGEST}}))["volumes"], "cifar-head")
    assert volume["secret"]["secretName"] == "cifar-head" and volume["secret"]["defaultMode"] == 0o440


def test_from_a_url_an_init_container_fetches_and_checks_it() -> None:
    pod = _pod(render({"cifarHead": SOURCES["url"]}))
    assert "emptyDir" in _named(pod["volumes"], "cifar-head")
    (init,) = pod["initContainers"]
    assert init["name"] == "fetch-cifar-head"
    command = [*init["command"], *init["args"]]
    assert command[:2] == ["visionserve", "fetch-weights"]
    args = build_parser().parse_args(command[1:])  # the real command accepts exactly these arguments
    assert (args.url, args.sha256, str(args.output)) == (SOURCES["url"]["url"], DIGEST, f"{MOUNT}/cifar10_head.pt")
    assert _named(init["volumeMounts"], "cifar-head")["mountPath"] == MOUNT
    assert init["securityContext"]["readOnlyRootFilesystem"] is True


def test_with_the_weights_init_container_both_run() -> None:
    pod = _pod(render({"cifarHead": SOURCES["url"], "weights": {"source": "initContainer"}}))
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-cifar-head", "fetch-weights"]


def test_by_default_nothing_is_mounted() -> None:
    pod = _pod(render())
    assert "initContainers" not in pod
    assert all(volume["name"] != "cifar-head" for volume in pod["volumes"])


def test_a_head_in_a_configmap_loads_where_the_chart_points(tiny_head: tuple[Path, str], tmp_path: Path) -> None:
    """`kubectl create configmap --from-file` puts the binary file under binaryData; the kubelet writes it back as
    the file the chart mounts. Here the folder stands in for the mount; the path and sha256 come from the chart."""
    head = tiny_head[0]
    configmap = {"binaryData": {"cifar10_head.pt": base64.b64encode(head.read_bytes()).decode()}}
    mounted = tmp_path / "mount"
    mounted.mkdir()
    for key, data in configmap["binaryData"].items():
        (mounted / key).write_bytes(base64.b64decode(data))
    values = {"cifarHead": {**SOURCES["configMap"], "sha256": sha256_of(head), "mountPath": str(mounted)}}
    settings = service_config(render(values), tmp_path)
    state, info = load_cifar_head_state(settings.cifar_head, settings.cifar_head_sha256, seed=0)
    assert state is not None and info.sha256 == sha256_of(head)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"cifarHead": SOURCES["configMap"], "config": {"cifar_head": "/models/head.pt"}},
            'leave config.cifar_head at none, not "/models/head.pt"',
        ),
        ({"cifarHead": {"source": "secret"}}, "cifarHead.name is required when cifarHead.source is secret"),
        ({"cifarHead": {"source": "url", "url": "https://x/h.pt"}}, "cifarHead.source url needs cifarHead.url and"),
    ],
)
def test_incomplete_or_conflicting_values_fail_at_install(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"cifarHead": {"source": "pvc"}}, "source"),
        ({"cifarHead": {"source": "url", "url": "ftp://x/h.pt"}}, "url"),
        ({"cifarHead": {"sha256": "abc"}}, "sha256"),
        ({"cifarHead": {"mountpath": "/x"}}, "mountpath"),
    ],
)
def test_the_schema_refuses_wrong_cifar_head_values(values: dict, named: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert named in str(caught.value)
