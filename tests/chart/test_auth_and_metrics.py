"""API keys from an existing Secret and /metrics on its own port, as the chart renders them."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest
import yaml

from tests.chart.rendering import CHART, notes, one, render, service_config, values_of
from tests.helpers import ROOT

KEYS_PATH = "/var/run/visionserve/api-keys"
AUTH = {"auth": {"apiKeys": {"existingSecret": "vs-api-keys"}}}
NO_METRICS_PORT = {"metrics": {"port": 0}}


def _pod(documents: list[dict]) -> dict:
    return one(documents, "Deployment")["spec"]["template"]["spec"]


def _test_pod(documents: list[dict]) -> dict:
    return next(doc for doc in documents if doc["kind"] == "Pod")["spec"]


def _services(documents: list[dict]) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == "Service"}


def _volume(pod: dict, name: str) -> dict | None:
    return next((volume for volume in pod["volumes"] if volume["name"] == name), None)


def _mount(container: dict, name: str) -> dict | None:
    return next((mount for mount in container["volumeMounts"] if mount["name"] == name), None)


def test_auth_is_off_by_default(tmp_path: Path) -> None:
    documents = render()
    assert service_config(documents, tmp_path).api_keys_file == ""
    for pod in (_pod(documents), _test_pod(documents)):
        assert _volume(pod, "api-keys") is None
        assert "--api-key-file" not in pod["containers"][0].get("command", [])


def test_the_secret_is_mounted_read_only_and_named_by_api_keys_file(tmp_path: Path) -> None:
    documents = render(AUTH)
    pod = _pod(documents)
    assert _volume(pod, "api-keys") == {
        "name": "api-keys",
        "secret": {"secretName": "vs-api-keys", "defaultMode": 0o440},  # every entry: several keys, for rotation
    }
    assert _mount(pod["containers"][0], "api-keys") == {"name": "api-keys", "mountPath": KEYS_PATH, "readOnly": True}
    assert service_config(documents, tmp_path).api_keys_file == KEYS_PATH
    assert not any(mount.get("subPath") for mount in pod["containers"][0]["volumeMounts"])  # subPath never updates


def test_one_entry_of_the_secret_can_be_chosen() -> None:
    values = {"auth": {"apiKeys": {"existingSecret": "vs-api-keys", "key": "current"}}}
    volume = _volume(_pod(render(values)), "api-keys")
    assert volume is not None and volume["secret"]["items"] == [{"key": "current", "path": "current"}]


def test_the_helm_test_reads_a_key_from_the_same_secret() -> None:
    documents = render(AUTH)
    pod = _test_pod(documents)
    assert _volume(pod, "api-keys") == _volume(_pod(documents), "api-keys")
    container = pod["containers"][0]
    assert _mount(container, "api-keys") == {"name": "api-keys", "mountPath": KEYS_PATH, "readOnly": True}
    command = container["command"]
    assert command[command.index("--api-key-file") + 1] == KEYS_PATH


def test_a_key_change_is_no_config_change() -> None:
    """Rotating keys edits the Secret, which the pods re-read: the config checksum does not roll them."""

    def checksum(values: dict) -> str:
        return one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    with_all = checksum(AUTH)
    assert with_all == checksum({"auth": {"apiKeys": {"existingSecret": "vs-api-keys", "key": "current"}}})
    assert with_all != checksum({})  # turning auth on is a config change


def test_metrics_have_their_own_named_port_and_cluster_ip_service(tmp_path: Path) -> None:
    documents = render({"service": {"type": "LoadBalancer"}})
    ports = {port["name"]: port["containerPort"] for port in _pod(documents)["containers"][0]["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}
    services = _services(documents)
    api, metrics = services["visionserve"], services["visionserve-metrics"]
    assert [port["name"] for port in api["spec"]["ports"]] == ["http"]  # the public Service carries no metrics
    assert metrics["spec"]["type"] == "ClusterIP"
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert metrics["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"
    assert service_config(documents, tmp_path).metrics_port == 9090


def test_the_service_monitor_scrapes_the_metrics_port() -> None:
    monitor = one(render({"monitoring": {"serviceMonitor": {"enabled": True}}}), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "metrics"


def test_the_network_policy_admits_prometheus_and_the_test_pod_to_the_metrics_port() -> None:
    policy = one(render({"networkPolicy": {"enabled": True}}), "NetworkPolicy")
    rules = policy["spec"]["ingress"]
    prometheus = next(rule for rule in rules if "namespaceSelector" in rule["from"][0])
    assert prometheus["ports"] == [{"port": "metrics", "protocol": "TCP"}]  # /metrics only, not the API
    test_pod = next(rule for rule in rules if "test" in str(rule["from"][0].get("podSelector", {})))
    assert {port["port"] for port in test_pod["ports"]} == {"http", "metrics"}
    callers = rules[0]
    assert callers["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_the_helm_test_scrapes_the_metrics_service() -> None:
    command = _test_pod(render())["containers"][0]["command"]
    assert command[command.index("--metrics-url") + 1] == "http://visionserve-metrics:9090"


def test_metrics_port_zero_keeps_metrics_on_the_http_port(tmp_path: Path) -> None:
    values = {
        **NO_METRICS_PORT,
        "networkPolicy": {"enabled": True},
        "monitoring": {"serviceMonitor": {"enabled": True}},
    }
    documents = render(values)
    assert [port["name"] for port in _pod(documents)["containers"][0]["ports"]] == ["http"]
    assert list(_services(documents)) == ["visionserve"]
    monitor = one(documents, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert "app.kubernetes.io/component" not in monitor["spec"]["selector"]["matchLabels"]
    prometheus = next(
        r for r in one(documents, "NetworkPolicy")["spec"]["ingress"] if "namespaceSelector" in r["from"][0]
    )
    assert prometheus["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert "--metrics-url" not in _test_pod(documents)["containers"][0]["command"]
    assert service_config(documents, tmp_path).metrics_port == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"metrics": {"port": 8080}}, "metrics.port (8080) is containerPort"),
        ({"auth": {"apiKeys": {"key": "current"}}}, "auth.apiKeys.key names an entry of auth.apiKeys.existingSecret"),
    ],
)
def test_combinations_that_cannot_work_fail_at_install(values: dict, message: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    assert "VALUES VALIDATION:" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"metrics": {"port": 80}}, "/metrics/port"),
        ({"metrics": {"port": "9090"}}, "/metrics/port"),
        ({"auth": {"apiKeys": {"existingSecret": "Not_A_Name"}}}, "/auth/apiKeys/existingSecret"),
        ({"auth": {"apiKeys": {"key": "a/b"}}}, "/auth/apiKeys/key"),
        ({"auth": {"apiKey": {}}}, "apiKey"),
        ({"config": {"api_keys_file": "/keys"}}, "api_keys_file"),
        ({"config": {"metrics_port": 9090}}, "metrics_port"),
    ],
)
def test_the_schema_refuses_wrong_auth_and_metrics_values(values: dict, named: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert named in str(caught.value)


def test_notes_say_when_keys_are_required_and_how_to_send_one() -> None:
    text = notes(AUTH)
    assert "API keys are required (Secret vs-api-keys" in text
    assert "Authorization: Bearer $VISIONSERVE_API_KEY" in text and "X-API-Key: $VISIONSERVE_API_KEY" in text
    assert "kubectl -n ml-serving get secret vs-api-keys" in text
    assert "No API key is required" in notes()
    assert "The page loads without a key; enter one there" in text  # the page at / needs none, its API calls do
    assert "/metrics is served on port 9090 only" in notes() and "port-forward service/visionserve-metrics" in notes()
    assert "/metrics is served" not in notes(NO_METRICS_PORT)


def test_the_kind_job_creates_the_secret_its_values_name() -> None:
    secret = values_of(CHART / "ci" / "kind-values.yaml")["auth"]["apiKeys"]["existingSecret"]
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    runs = "\n".join(step.get("run", "") for step in workflow["jobs"]["kind"]["steps"])
    assert f"--api-keys-secret {secret}" in runs  # make kind-demo creates it, and its smoke test sends the key
    assert _volume(_test_pod(render(values_of(CHART / "ci" / "kind-values.yaml"))), "api-keys") is not None
