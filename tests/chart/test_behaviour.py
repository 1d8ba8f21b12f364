"""What matters in the rendered objects: scaling, probes, security, GPU, config roll-outs, PDB."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest
import yaml

from app.cli.smoke_test import PROBES as SMOKE_TEST_PROBES
from tests.chart.rendering import CHART, kinds, notes, one, pod_specs, render, service_config, values_of


def _pod_spec(documents: list[dict]) -> dict:
    return one(documents, "Deployment")["spec"]["template"]["spec"]


def _container(documents: list[dict]) -> dict:
    return _pod_spec(documents)["containers"][0]


def test_hpa_scales_3_to_10_and_the_deployment_leaves_replicas_to_it() -> None:
    documents = render()
    hpa = one(documents, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert "replicas" not in one(documents, "Deployment")["spec"]


def test_without_the_hpa_the_deployment_sets_replicas() -> None:
    documents = render({"autoscaling": {"enabled": False}, "replicaCount": 4})
    assert "HorizontalPodAutoscaler" not in kinds(documents)
    assert one(documents, "Deployment")["spec"]["replicas"] == 4


def test_the_custom_metric_is_a_pods_metric() -> None:
    metric = {"enabled": True, "name": "visionserve_queue_depth", "targetAverageValue": "8"}
    hpa = one(render({"autoscaling": {"customMetric": metric}}), "HorizontalPodAutoscaler")
    pods = hpa["spec"]["metrics"][1]
    assert pods["type"] == "Pods" and pods["pods"]["metric"]["name"] == "visionserve_queue_depth"
    assert pods["pods"]["target"] == {"type": "AverageValue", "averageValue": "8"}


def test_probes_point_at_the_services_endpoints() -> None:
    container = _container(render())
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # room for a slow model load
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert all(container[p]["httpGet"]["port"] == "http" for p in ("startupProbe", "readinessProbe", "livenessProbe"))


RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
PLATFORM_IDS = {"runAsUser", "runAsGroup", "fsGroup"}  # what OpenShift's SCC may assign instead


def _security_contexts(documents: list[dict]) -> list[tuple[dict, list[dict]]]:
    """(pod securityContext, [container securityContexts]) of every pod the chart renders."""
    return [
        (pod["securityContext"], [c["securityContext"] for c in pod.get("initContainers", []) + pod["containers"]])
        for pod in pod_specs(documents)
    ]


def _without(context: dict, keys: set[str]) -> dict:
    return {key: value for key, value in context.items() if key not in keys}


def test_pods_run_restricted(ci_values: dict) -> None:
    documents = render(ci_values)
    for pod, containers in _security_contexts(documents):
        assert _without(pod, PLATFORM_IDS) == _without(RESTRICTED_POD, PLATFORM_IDS)
        assert all(_without(c, PLATFORM_IDS) == _without(RESTRICTED_CONTAINER, PLATFORM_IDS) for c in containers)
    for pod in pod_specs(documents):
        assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert "limits" in container["resources"] and "requests" in container["resources"]


def test_defaults_render_the_restricted_contexts_on_every_pod_and_container() -> None:
    contexts = _security_contexts(render({"weights": {"source": "initContainer"}}))
    assert [len(containers) for _, containers in contexts] == [2, 1]  # init + service, helm test
    for pod, containers in contexts:
        assert pod == RESTRICTED_POD and containers == [RESTRICTED_CONTAINER] * len(containers)


def test_openshift_values_leave_the_ids_to_the_platform() -> None:
    values = {**values_of(CHART / "ci" / "openshift-values.yaml"), "weights": {"source": "initContainer"}}
    for pod, containers in _security_contexts(render(values)):
        assert pod == _without(RESTRICTED_POD, PLATFORM_IDS)
        assert containers == [_without(RESTRICTED_CONTAINER, PLATFORM_IDS)] * len(containers)


def test_security_context_fields_can_be_added() -> None:
    values = {"podSecurityContext": {"supplementalGroups": [4000]}, "containerSecurityContext": {"privileged": False}}
    for pod, containers in _security_contexts(render(values)):
        assert pod == {**RESTRICTED_POD, "supplementalGroups": [4000]}
        assert containers == [{**RESTRICTED_CONTAINER, "privileged": False}] * len(containers)


def test_writable_paths_are_empty_dirs() -> None:
    documents = render()
    mounts = {m["mountPath"]: m["name"] for m in _container(documents)["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec(documents)["volumes"]}
    for path in ("/tmp", "/cache", "/metrics", "/dev/shm"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    env = {e["name"]: e.get("value") for e in _container(documents)["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/metrics" and env["CONFIG_FILE"] == "/etc/visionserve/config.yaml"


def test_termination_grace_covers_pause_drain_and_graceful_timeout(tmp_path: Path) -> None:
    shutdown = {"preStopSleepSeconds": 7, "drainSeconds": 3, "gracefulTimeoutSeconds": 40}
    documents = render({"shutdown": shutdown})
    pod = _pod_spec(documents)
    assert pod["terminationGracePeriodSeconds"] > 7 + 3 + 40
    assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1] == "import time; time.sleep(7)"
    settings = service_config(documents, tmp_path)
    assert (settings.drain_seconds, settings.graceful_timeout) == (3, 40)


def test_the_cache_values_reach_the_service_and_default_to_off(tmp_path: Path) -> None:
    assert service_config(render(), tmp_path).cache_max_entries == 0
    settings = service_config(render({"cache": {"maxEntries": 5000, "maxBytes": 268435456}}), tmp_path)
    assert (settings.cache_max_entries, settings.cache_max_bytes) == (5000, 268435456)


def test_gpu_values_add_limits_selector_toleration_runtime_and_cuda(tmp_path: Path) -> None:
    documents = render(yaml.safe_load(Path("charts/visionserve/ci/gpu-operator-values.yaml").read_text()))
    pod = _pod_spec(documents)
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}  # set in the file: GPU Operator nodes
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["runtimeClassName"] == "nvidia"
    settings = service_config(documents, tmp_path)
    assert (settings.device, settings.workers, settings.torch_threads) == ("cuda", 2, 4)  # 8 CPUs / 2 workers


def test_cpu_values_have_no_trace_of_gpus(tmp_path: Path) -> None:
    documents = render({"gpu": {"runtimeClassName": "nvidia"}})  # set, but gpu.enabled is false
    pod = _pod_spec(documents)
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in pod and "tolerations" not in pod and "runtimeClassName" not in pod
    settings = service_config(documents, tmp_path)
    assert (settings.device, settings.workers, settings.torch_threads) == ("cpu", 1, 0)  # 0: the CPU request's


def test_the_gpu_node_selector_is_overridable() -> None:
    values = {
        "gpu": {"enabled": True, "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"}},
        "nodeSelector": {"pool": "inference"},
    }
    pod = _pod_spec(render(values))
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "inference"}


def test_the_config_map_is_accepted_by_the_services_settings_loader(ci_values: dict, tmp_path: Path) -> None:
    settings = service_config(render(ci_values), tmp_path)
    assert settings.host == "0.0.0.0" and settings.port == 8080
    for key, value in ci_values.get("config", {}).items():
        assert getattr(settings, key) == value


def test_a_config_change_rolls_the_pods() -> None:
    def checksum(values: dict) -> str:
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum({})
    assert checksum({}) == base
    assert checksum({"config": {"max_batch_size": 16}}) != base
    assert checksum({"gpu": {"enabled": True}}) != base  # chart-owned keys count too
    assert checksum({"service": {"port": 8081}}) == base  # not in the config


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, True),
        ({"autoscaling": {"minReplicas": 1}}, False),
        ({"autoscaling": {"enabled": False}, "replicaCount": 1}, False),
        ({"autoscaling": {"enabled": False}, "replicaCount": 2}, True),
        ({"podDisruptionBudget": {"enabled": False}}, False),
    ],
)
def test_a_pdb_exists_only_when_minimum_replicas_exceed_one(values: dict, expected: bool) -> None:
    assert ("PodDisruptionBudget" in kinds(render(values))) is expected


def test_monitoring_objects_are_off_by_default_and_carry_additional_labels() -> None:
    assert not kinds(render()) & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "Ingress"}
    on = {"enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}}
    documents = render({"monitoring": {"serviceMonitor": on, "prometheusRule": on, "dashboards": on}})
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert one(documents, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dashboards = [d for d in documents if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]]
    assert dashboards and all(d["metadata"]["labels"]["grafana_dashboard"] == "1" for d in dashboards)
    assert all(d["metadata"]["labels"]["release"] == "kube-prometheus-stack" for d in dashboards)


def test_weights_from_an_init_container_or_a_claim() -> None:
    init = _pod_spec(render({"weights": {"source": "initContainer"}}))
    assert init["initContainers"][0]["command"] == ["visionserve", "fetch-weights"]
    assert {"name": "TORCH_HOME", "value": "/models/torch"} in init["containers"][0]["env"]
    claim = _pod_spec(render({"weights": {"source": "existingClaim", "existingClaim": "weights-pvc"}}))
    volume = next(v for v in claim["volumes"] if v["name"] == "weights")
    assert volume["persistentVolumeClaim"] == {"claimName": "weights-pvc", "readOnly": True}
    baked = _pod_spec(render())
    assert "initContainers" not in baked and all(v["name"] != "weights" for v in baked["volumes"])


def test_image_tag_defaults_to_app_version_and_a_digest_pins_it() -> None:
    assert _container(render())["image"] == "ghcr.io/visionserve/visionserve:0.1.0"
    digest = "sha256:" + "a" * 64
    assert _container(render({"image": {"digest": digest}}))["image"] == f"ghcr.io/visionserve/visionserve@{digest}"


def test_network_policy_admits_the_listed_peers_and_prometheus() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    policy = one(render({"networkPolicy": {"enabled": True, "allowedFrom": [peer]}}), "NetworkPolicy")
    sources = [rule["from"] for rule in policy["spec"]["ingress"]]
    assert [peer] in sources
    assert any("monitoring" in str(source) for source in sources)


def test_helm_test_pod_checks_readiness_and_a_prediction() -> None:
    """The helm test runs `visionserve smoke-test` (tests/app/cli/test_smoke_test.py runs it against a real server):
    /readyz, /healthz and the Open Inference Protocol's /v2/health/ready, the model, a prediction per head."""
    assert "/v2/health/ready" in SMOKE_TEST_PROBES
    pod = next(doc for doc in render() if doc["kind"] == "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command == [
        "visionserve",
        "smoke-test",
        "--url",
        "http://visionserve:80",
        "--metrics-url",
        "http://visionserve-metrics:9090",
    ]


def test_notes_explain_port_forward_and_curl() -> None:
    text = notes()
    assert "kubectl -n ml-serving port-forward service/visionserve 8080:80" in text
    assert "port-forward service/visionserve 8080:80\n   Then open http://127.0.0.1:8080/ in a browser" in text
    assert "The page loads without a key" not in text
    assert "curl -s -H 'Content-Type: image/jpeg'" in text and "helm test visionserve" in text
    assert "RANDOM" not in text.upper().replace("RANDOM WEIGHTS", "")
    assert "meaningless" in notes({"config": {"weights": "random"}})


def test_notes_state_the_limits_clients_meet() -> None:
    text = notes({"config": {"request_timeout_s": 12, "keepalive_timeout_s": 620}})
    assert "requests time out after 12 s (504" in text and "idle connections close after 620 s" in text
    assert "header must arrive within 10 s" in text and "at most 128 connections and 16 images per request" in text
    assert "retry_pause_max_s=0" not in text
    ingress = {"ingress": {"enabled": True}}
    assert "retry_pause_max_s=0" in notes(ingress)
    assert "retry_pause_max_s=0" not in notes({**ingress, "config": {"retry_pause_max_s": 0}})


def test_scheduling_settings_pass_through_untouched() -> None:
    values = yaml.safe_load(Path("charts/visionserve/ci/scheduling-values.yaml").read_text())
    documents = render(values)
    pod = _pod_spec(documents)
    for key in ("affinity", "topologySpreadConstraints", "priorityClassName", "tolerations", "imagePullSecrets"):
        assert pod[key] == values[key], key
    deployment = one(documents, "Deployment")
    assert deployment["spec"]["strategy"] == values["updateStrategy"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["example.com/team"] == "vision"
    test_pod = next(doc for doc in documents if doc["kind"] == "Pod")
    assert test_pod["spec"]["imagePullSecrets"] == values["imagePullSecrets"]


def test_selectors_are_name_and_instance_only_and_skip_the_test_pod() -> None:
    values = {"networkPolicy": {"enabled": True}, "monitoring": {"serviceMonitor": {"enabled": True}}}
    documents = render(values)
    expected = {"app.kubernetes.io/name": "visionserve", "app.kubernetes.io/instance": "visionserve"}
    deployment = one(documents, "Deployment")
    assert deployment["spec"]["selector"]["matchLabels"] == expected
    services = [doc for doc in documents if doc["kind"] == "Service"]  # the API's and the metrics'
    assert len(services) == 2 and all(service["spec"]["selector"] == expected for service in services)
    assert one(documents, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == expected
    assert one(documents, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == expected
    metrics = {**expected, "app.kubernetes.io/component": "metrics"}  # the metrics Service, not the API's
    assert one(documents, "ServiceMonitor")["spec"]["selector"]["matchLabels"] == metrics
    test_labels = next(doc for doc in documents if doc["kind"] == "Pod")["metadata"]["labels"]
    assert not expected.items() <= test_labels.items()  # the test pod is no replica, no endpoint, no PDB member
    sources = [peer for rule in one(documents, "NetworkPolicy")["spec"]["ingress"] for peer in rule["from"]]
    assert {"podSelector": {"matchLabels": {k: test_labels[k] for k in expected}}} in sources


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"weights": {"source": "initContainer"}, "config": {"weights": "/models/mine.pth"}}, "config.weights must be"),
        ({"config": {"worker_timeout": 900}}, "config.worker_timeout is 900s"),
        ({"config": {"max_queue": 16}}, "config.max_images (16) is not below config.max_queue (16)"),
        ({"weights": {"source": "existingClaim"}}, "weights.existingClaim is required when weights.source is"),
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 4}}, "minReplicas (5) must not exceed"),
    ],
)
def test_combinations_that_would_crash_loop_fail_at_install(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    assert "VALUES VALIDATION:" in str(caught.value) and message in str(caught.value)


def test_every_wrong_combination_is_reported_at_once() -> None:
    values = {"config": {"max_queue": 16, "worker_timeout": 900}, "weights": {"source": "existingClaim"}}
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    message = str(caught.value)
    assert message.count("VALUES VALIDATION:") == 1
    for expected in ("config.worker_timeout is 900s", "is not below config.max_queue (16)", "weights.existingClaim is"):
        assert expected in message


def test_the_init_container_fetches_the_configured_torchvision_weights() -> None:
    values = {"weights": {"source": "initContainer"}, "config": {"weights": "IMAGENET1K_V1"}}
    init = _pod_spec(render(values))["initContainers"][0]
    assert init["args"][:2] == ["--weights", "IMAGENET1K_V1"]
