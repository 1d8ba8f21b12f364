"""scripts/rollout_check.py: the decisions on API-server-shaped objects, and the poll loop with fake APIs and clock."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    V1Deployment,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodTemplateSpec,
)
from kubernetes.client.exceptions import ApiException

from tests.helpers import ROOT, load_script

SCRIPT = ROOT / "scripts" / "rollout_check.py"

NAMESPACE = "ml"
NAME = "prod-visionserve"
NEW_HASH = "7d9c6b5f48"
OLD_HASH = "5f6d8c7b9a"
SELECTOR = {"app.kubernetes.io/instance": "prod", "app.kubernetes.io/name": "visionserve"}
SELECTOR_STRING = "app.kubernetes.io/instance=prod,app.kubernetes.io/name=visionserve"
TIMESTAMP = "2025-11-25T10:00:00Z"


rc = load_script("rollout_check")


@pytest.fixture(scope="module")
def api_client() -> Iterator[ApiClient]:
    with ApiClient() as api:
        yield api


@pytest.fixture
def to_model(api_client: ApiClient) -> Any:
    """JSON document -> the client's model, through the same deserializer as a real API answer."""

    def convert(document: dict[str, Any], type_name: str) -> Any:
        return api_client.deserialize(json.dumps(document), type_name, "application/json")

    return convert


# API-server-shaped documents --------------------------------------------------------------------------------


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "uid": f"uid-{name}",
        "resourceVersion": "48213",
        "creationTimestamp": TIMESTAMP,
        **extra,
    }


def deployment_doc(
    *,
    generation: int = 2,
    observed: int = 2,
    spec_replicas: int | None = 3,
    replicas: int = 3,
    updated: int = 3,
    ready: int | None = None,
    available: int = 3,
    progressing_reason: str = "NewReplicaSetAvailable",
    revision: str = "2",
) -> dict[str, Any]:
    """A Deployment as the API server answers GET .../deployments/NAME (fields it omits when zero are omitted)."""
    status: dict[str, Any] = {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated}
    ready = available if ready is None else ready
    if ready:
        status["readyReplicas"] = ready
    if available:
        status["availableReplicas"] = available
    if replicas - available:
        status["unavailableReplicas"] = replicas - available
    status["conditions"] = [
        {
            "type": "Available",
            "status": "True" if available >= 2 else "False",
            "lastUpdateTime": TIMESTAMP,
            "lastTransitionTime": TIMESTAMP,
            "reason": "MinimumReplicasAvailable" if available >= 2 else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability.",
        },
        {
            "type": "Progressing",
            "status": "False" if progressing_reason == "ProgressDeadlineExceeded" else "True",
            "lastUpdateTime": TIMESTAMP,
            "lastTransitionTime": TIMESTAMP,
            "reason": progressing_reason,
            "message": f'ReplicaSet "{NAME}-{NEW_HASH}" has timed out progressing.'
            if progressing_reason == "ProgressDeadlineExceeded"
            else f'ReplicaSet "{NAME}-{NEW_HASH}" is progressing.',
        },
    ]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": SELECTOR},
        "template": {
            "metadata": {"labels": {**SELECTOR, "app.kubernetes.io/part-of": "visionserve"}},
            "spec": {
                "containers": [
                    {
                        "name": "visionserve",
                        "image": "ghcr.io/visionserve/visionserve:0.1.0",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "2", "memory": "3Gi"}, "requests": {"cpu": "2"}},
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 42,
            },
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 600,
    }
    if spec_replicas is not None:
        spec["replicas"] = spec_replicas
    annotations = {"deployment.kubernetes.io/revision": revision, "meta.helm.sh/release-name": "prod"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(NAME, generation=generation, labels=SELECTOR, annotations=annotations),
        "spec": spec,
        "status": status,
    }


def replicaset_doc(template_hash: str, revision: str, replicas: int) -> dict[str, Any]:
    """A ReplicaSet the Deployment controller made for one revision."""
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME, "uid": f"uid-{NAME}", "controller": True}
    return {
        "metadata": meta(
            f"{NAME}-{template_hash}",
            labels={**SELECTOR, "pod-template-hash": template_hash},
            annotations={"deployment.kubernetes.io/revision": revision},
            ownerReferences=[owner],
        ),
        "spec": {"replicas": replicas, "selector": {"matchLabels": {**SELECTOR, "pod-template-hash": template_hash}}},
        "status": {"replicas": replicas, "observedGeneration": 1},
    }


def replicaset_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {"resourceVersion": "1"}, "items": items}


def pod_doc(
    suffix: str,
    *,
    template_hash: str = NEW_HASH,
    ready: bool = True,
    waiting_reason: str | None = None,
    init_waiting_reason: str | None = None,
    phase: str = "Running",
    terminating: bool = False,
) -> dict[str, Any]:
    """A pod as listed by GET /api/v1/namespaces/NS/pods?labelSelector=..."""
    name = f"{NAME}-{template_hash}-{suffix}"
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{NAME}-{template_hash}", "uid": "rs"}
    extra: dict[str, Any] = {
        "generateName": f"{NAME}-{template_hash}-",
        "labels": {**SELECTOR, "pod-template-hash": template_hash},
        "ownerReferences": [owner],
    }
    if terminating:
        extra |= {"deletionTimestamp": TIMESTAMP, "deletionGracePeriodSeconds": 42}

    def container_status(container: str, reason: str | None, is_ready: bool) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": container,
            "image": "ghcr.io/visionserve/visionserve:0.1.0",
            "imageID": "",
            "ready": is_ready,
            "restartCount": 0,
            "started": reason is None,
        }
        if reason is None:
            status["state"] = {"running": {"startedAt": TIMESTAMP}}
            status["containerID"] = "containerd://0123abcd"
            status["imageID"] = "ghcr.io/visionserve/visionserve@sha256:" + "ab" * 32
        elif reason == "CrashLoopBackOff":
            status["state"] = {"waiting": {"reason": reason, "message": f"back-off 5m0s restarting failed {name}"}}
            status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": TIMESTAMP}}
            status["restartCount"] = 6
        else:
            status["state"] = {"waiting": {"reason": reason, "message": 'Back-off pulling image "x:nope"'}}
        return status

    ready_status = "True" if ready else "False"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": TIMESTAMP},
            {"type": "Initialized", "status": "False" if init_waiting_reason else "True"},
            {"type": "Ready", "status": ready_status, "lastTransitionTime": TIMESTAMP},
            {"type": "ContainersReady", "status": ready_status, "lastTransitionTime": TIMESTAMP},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": TIMESTAMP},
        ],
        "hostIP": "10.0.1.7",
        "podIP": "10.244.3.12",
        "qosClass": "Burstable",
        "startTime": TIMESTAMP,
        "containerStatuses": [container_status("visionserve", waiting_reason, ready and not waiting_reason)],
    }
    if init_waiting_reason is not None:
        status["initContainerStatuses"] = [container_status("fetch-weights", init_waiting_reason, False)]
    if not ready:
        status["conditions"][2]["reason"] = "ContainersNotReady"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, **extra),
        "spec": {"containers": [{"name": "visionserve", "image": "ghcr.io/visionserve/visionserve:0.1.0"}]},
        "status": status,
    }


def pod_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items}


def hpa_doc(min_replicas: int = 3, max_replicas: int = 10, target: str = NAME) -> dict[str, Any]:
    """An autoscaling/v2 HorizontalPodAutoscaler as the chart's hpa.yaml creates it, with a status."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(NAME, labels=SELECTOR),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 30,
                    "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
                },
            },
        },
        "status": {
            "currentReplicas": 3,
            "desiredReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}},
            ],
            "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": TIMESTAMP}],
        },
    }


def healthy_pods() -> list[dict[str, Any]]:
    return [pod_doc("a1b2c"), pod_doc("d3e4f"), pod_doc("g5h6i")]


def rollout_replicasets() -> list[dict[str, Any]]:
    return [replicaset_doc(OLD_HASH, "1", 0), replicaset_doc(NEW_HASH, "2", 3)]


# The fullname rule ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("visionserve", "visionserve"),
        ("prod", "prod-visionserve"),
        ("my-visionserve-prod", "my-visionserve-prod"),
        ("a" * 60, "a" * 60 + "-vi"),  # cut to 63 characters, as the chart's trunc 63
        ("b" * 51, "b" * 51 + "-visionserve"),
        ("c" * 52, "c" * 52 + "-visionserv"),
        ("d" * 63, "d" * 63),
        ("e" * 62, "e" * 62),  # "e"*62 + "-" is cut, then the "-" trimmed
    ],
)
def test_chart_fullname_follows_the_helpers_tpl_rule(release: str, expected: str) -> None:
    assert rc.chart_fullname(release) == expected
    assert len(rc.chart_fullname(release)) <= 63


# Deployment ----------------------------------------------------------------------------------------------


def test_complete_rollout_is_done(to_model: Any) -> None:
    result = rc.check_deployment(to_model(deployment_doc(), "V1Deployment"))
    assert result == rc.Result.done("3/3 replicas updated and available")


def test_mid_rollout_waits_with_the_available_count(to_model: Any) -> None:
    deployment = to_model(deployment_doc(available=2, ready=2), "V1Deployment")
    result = rc.check_deployment(deployment)
    assert result.state is rc.State.WAITING
    assert result.reason == "2/3 updated replicas available"


def test_too_few_updated_replicas_waits(to_model: Any) -> None:
    deployment = to_model(deployment_doc(replicas=4, updated=1, available=3), "V1Deployment")
    assert rc.check_deployment(deployment) == rc.Result.waiting("1/3 replicas updated")


def test_old_replicas_still_present_waits(to_model: Any) -> None:
    deployment = to_model(deployment_doc(replicas=4, updated=3, available=4), "V1Deployment")
    result = rc.check_deployment(deployment)
    assert result.state is rc.State.WAITING
    assert "1 old replicas pending termination" in result.reason


def test_unobserved_generation_waits(to_model: Any) -> None:
    deployment = to_model(deployment_doc(generation=3, observed=2), "V1Deployment")
    result = rc.check_deployment(deployment)
    assert result.state is rc.State.WAITING
    assert "generation 3 not observed yet (observed 2)" in result.reason


def test_progress_deadline_exceeded_fails(to_model: Any) -> None:
    doc = deployment_doc(updated=1, available=2, replicas=3, progressing_reason="ProgressDeadlineExceeded")
    result = rc.check_deployment(to_model(doc, "V1Deployment"))
    assert result.state is rc.State.FAILED
    assert "exceeded its progress deadline" in result.reason
    assert "has timed out progressing" in result.reason


def test_a_stale_progress_deadline_from_the_previous_generation_waits(to_model: Any) -> None:
    """Deploying a fix over a timed-out rollout: the old condition stays until the new generation is observed."""
    doc = deployment_doc(generation=4, observed=3, progressing_reason="ProgressDeadlineExceeded")
    assert rc.check_deployment(to_model(doc, "V1Deployment")).state is rc.State.WAITING


def test_without_spec_replicas_the_status_replicas_are_desired(to_model: Any) -> None:
    deployment = to_model(deployment_doc(spec_replicas=None, replicas=4, updated=4, available=3), "V1Deployment")
    assert deployment.spec.replicas is None
    assert rc.desired_replicas(deployment) == 4
    assert rc.check_deployment(deployment) == rc.Result.waiting("3/4 updated replicas available")


def test_model_objects_built_directly_work_too() -> None:
    deployment = V1Deployment(
        metadata=V1ObjectMeta(name=NAME, generation=1),
        spec=V1DeploymentSpec(
            replicas=2,
            selector=V1LabelSelector(match_labels=SELECTOR),
            template=V1PodTemplateSpec(),
        ),
        status=V1DeploymentStatus(observed_generation=1, replicas=2, updated_replicas=2, available_replicas=2),
    )
    assert rc.check_deployment(deployment).state is rc.State.DONE
    assert rc.label_selector(deployment) == SELECTOR_STRING


# Pods -------------------------------------------------------------------------------------------------------


def pods(to_model: Any, *docs: dict[str, Any]) -> list[Any]:
    return to_model(pod_list(*docs), "V1PodList").items


def test_all_pods_ready_is_done(to_model: Any) -> None:
    assert rc.check_pods(pods(to_model, *healthy_pods()), 3, NEW_HASH) == rc.Result.done("3 pods ready")


def test_a_pod_not_ready_waits_and_names_it(to_model: Any) -> None:
    listed = pods(to_model, pod_doc("a1b2c"), pod_doc("d3e4f", ready=False), pod_doc("g5h6i"))
    result = rc.check_pods(listed, 3, NEW_HASH)
    assert result == rc.Result.waiting(f"2/3 pods ready (not ready: {NAME}-{NEW_HASH}-d3e4f)")


def test_fewer_pods_than_desired_waits(to_model: Any) -> None:
    assert rc.check_pods(pods(to_model, pod_doc("a1b2c")), 3, NEW_HASH) == rc.Result.waiting("1/3 pods ready")


@pytest.mark.parametrize("reason", ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"])
def test_a_crashing_or_unpullable_pod_fails_and_names_it(to_model: Any, reason: str) -> None:
    listed = pods(to_model, pod_doc("a1b2c"), pod_doc("x9y8z", ready=False, waiting_reason=reason))
    result = rc.check_pods(listed, 3, NEW_HASH)
    assert result.state is rc.State.FAILED
    assert result.reason.startswith(f"pod {NAME}-{NEW_HASH}-x9y8z container visionserve: {reason} (")


def test_an_init_container_in_image_pull_back_off_fails(to_model: Any) -> None:
    listed = pods(to_model, pod_doc("x9y8z", ready=False, phase="Pending", init_waiting_reason="ImagePullBackOff"))
    result = rc.check_pods(listed, 1, NEW_HASH)
    assert result.state is rc.State.FAILED
    assert f"pod {NAME}-{NEW_HASH}-x9y8z container fetch-weights: ImagePullBackOff" in result.reason


def test_a_crashing_pod_of_the_old_revision_does_not_fail(to_model: Any) -> None:
    """Deploying a fix for a crash-looping release: the old pods being replaced are not the new release's fault."""
    old = pod_doc("o1d2p", template_hash=OLD_HASH, ready=False, waiting_reason="CrashLoopBackOff")
    result = rc.check_pods(pods(to_model, old, pod_doc("a1b2c")), 3, NEW_HASH)
    assert result.state is rc.State.WAITING
    assert result.reason == f"1/2 pods ready (not ready: {NAME}-{OLD_HASH}-o1d2p)"
    # ...nor does any pod while the current revision is not known yet
    new = pod_doc("x9y8z", ready=False, waiting_reason="CrashLoopBackOff")
    assert rc.check_pods(pods(to_model, new), 1, None).state is rc.State.WAITING


def test_terminating_and_evicted_pods_are_not_counted(to_model: Any) -> None:
    listed = pods(
        to_model,
        *healthy_pods(),
        pod_doc("t0t0t", template_hash=OLD_HASH, ready=False, terminating=True),
        pod_doc("e0e0e", template_hash=OLD_HASH, ready=False, phase="Failed"),
    )
    assert rc.check_pods(listed, 3, NEW_HASH) == rc.Result.done("3 pods ready")


def test_current_template_hash_is_the_replicaset_of_the_deployments_revision(to_model: Any) -> None:
    foreign = replicaset_doc("0f0f0f0f0f", "2", 1)  # another Deployment whose pods carry the same labels
    foreign["metadata"]["ownerReferences"][0]["name"] = "prod-visionserve-canary"
    replicasets = to_model(replicaset_list(foreign, *rollout_replicasets()), "V1ReplicaSetList").items
    assert rc.current_template_hash(to_model(deployment_doc(), "V1Deployment"), replicasets) == NEW_HASH
    unobserved = to_model(deployment_doc(generation=3, observed=2), "V1Deployment")
    assert rc.current_template_hash(unobserved, replicasets) is None
    assert rc.current_template_hash(to_model(deployment_doc(revision="3"), "V1Deployment"), replicasets) is None


# HPA --------------------------------------------------------------------------------------------------------

TARGET = rc.Target(namespace=NAMESPACE, name=NAME, hpa=rc.Bounds(3, 10))


def test_hpa_with_the_expected_bounds_is_done(to_model: Any) -> None:
    hpa = to_model(hpa_doc(), "V2HorizontalPodAutoscaler")
    assert rc.check_hpa(hpa, TARGET) == rc.Result.done("HPA 3-10 replicas")


def test_missing_hpa_waits() -> None:
    assert rc.check_hpa(None, TARGET) == rc.Result.waiting(f"HPA {NAME} not found")


@pytest.mark.parametrize(("low", "high"), [(2, 10), (3, 8), (1, 1)])
def test_hpa_with_wrong_bounds_fails_with_both_values(to_model: Any, low: int, high: int) -> None:
    result = rc.check_hpa(to_model(hpa_doc(low, high), "V2HorizontalPodAutoscaler"), TARGET)
    assert result.state is rc.State.FAILED
    assert f"minReplicas={low} maxReplicas={high}" in result.reason
    assert "expected minReplicas=3 maxReplicas=10" in result.reason


def test_hpa_scaling_another_deployment_fails(to_model: Any) -> None:
    result = rc.check_hpa(to_model(hpa_doc(target="other"), "V2HorizontalPodAutoscaler"), TARGET)
    assert result == rc.Result.failed(f"HPA {NAME} scales Deployment/other, not Deployment/{NAME}")


def test_evaluate_combines_every_check(to_model: Any) -> None:
    deployment = to_model(deployment_doc(), "V1Deployment")
    replicasets = to_model(replicaset_list(*rollout_replicasets()), "V1ReplicaSetList").items
    listed = pods(to_model, *healthy_pods())
    hpa = to_model(hpa_doc(), "V2HorizontalPodAutoscaler")
    done = rc.evaluate(TARGET, deployment, replicasets, listed, hpa)
    assert done == rc.Result.done("3/3 replicas updated and available, 3 pods ready, HPA 3-10 replicas")
    missing = rc.evaluate(TARGET, deployment, replicasets, listed, None)
    assert missing == rc.Result.waiting(f"HPA {NAME} not found")
    no_hpa = rc.Target(namespace=NAMESPACE, name=NAME)
    assert rc.evaluate(no_hpa, deployment, replicasets, listed, None).state is rc.State.DONE
    wrong = to_model(hpa_doc(1, 5), "V2HorizontalPodAutoscaler")
    assert rc.evaluate(no_hpa, deployment, replicasets, listed, wrong).state is rc.State.DONE


# The loop, with fake APIs and a fake clock -------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the cluster answers during one poll; None means 404."""

    deployment: dict[str, Any] | None
    pods: Sequence[dict[str, Any]] = ()
    replicasets: Sequence[dict[str, Any]] = field(default_factory=rollout_replicasets)
    hpa: dict[str, Any] | None = field(default_factory=hpa_doc)
    error: ApiException | None = None


def not_found() -> ApiException:
    return ApiException(status=404, reason="Not Found")


class FakeCluster:
    """AppsV1Api, CoreV1Api and AutoscalingV2Api at once: each deployment read moves to the next snapshot."""

    def __init__(self, api: ApiClient, snapshots: Sequence[Snapshot]) -> None:
        self.api = api
        self.snapshots = list(snapshots)
        self.polls = 0
        self.calls: list[tuple[str, str, str, float]] = []

    @property
    def now(self) -> Snapshot:
        return self.snapshots[min(self.polls, len(self.snapshots)) - 1]

    def _model(self, document: dict[str, Any] | None, type_name: str) -> Any:
        if document is None:
            raise not_found()
        return self.api.deserialize(json.dumps(copy.deepcopy(document)), type_name, "application/json")

    def read_namespaced_deployment(self, name: str, namespace: str, *, _request_timeout: float) -> Any:
        self.polls += 1
        self.calls.append(("deployment", namespace, name, _request_timeout))
        if self.now.error is not None:
            raise self.now.error
        return self._model(self.now.deployment, "V1Deployment")

    def list_namespaced_replica_set(self, namespace: str, *, label_selector: str, _request_timeout: float) -> Any:
        self.calls.append(("replicasets", namespace, label_selector, _request_timeout))
        return self._model(replicaset_list(*self.now.replicasets), "V1ReplicaSetList")

    def list_namespaced_pod(self, namespace: str, *, label_selector: str, _request_timeout: float) -> Any:
        self.calls.append(("pods", namespace, label_selector, _request_timeout))
        return self._model(pod_list(*self.now.pods), "V1PodList")

    def read_namespaced_horizontal_pod_autoscaler(self, name: str, namespace: str, *, _request_timeout: float) -> Any:
        self.calls.append(("hpa", namespace, name, _request_timeout))
        return self._model(self.now.hpa, "V2HorizontalPodAutoscaler")

    def apis(self) -> Any:
        return rc.Apis(apps=self, core=self, autoscaling=self)


class FakeClock:
    """time.monotonic and time.sleep: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, seconds
        assert len(self.sleeps) < 1000, "the loop does not stop"
        self.sleeps.append(seconds)
        self.now += seconds


NEXT_HASH = "8c4f7d6b95"
NEXT_REPLICASETS = [
    replicaset_doc(OLD_HASH, "1", 0),
    replicaset_doc(NEW_HASH, "2", 3),
    replicaset_doc(NEXT_HASH, "3", 1),
]
ROLLOUT = [  # helm upgrade from revision 2 to 3: the spec changed, then one surge pod, then all replaced
    Snapshot(deployment_doc(generation=3, observed=2), healthy_pods()),
    Snapshot(
        deployment_doc(generation=3, observed=3, replicas=4, updated=1, available=3, revision="3"),
        [*healthy_pods(), pod_doc("n3w01", template_hash=NEXT_HASH, ready=False)],
        NEXT_REPLICASETS,
    ),
    Snapshot(
        deployment_doc(generation=3, observed=3, revision="3"),
        [pod_doc(suffix, template_hash=NEXT_HASH) for suffix in ("n3w01", "n3w02", "n3w03")],
        NEXT_REPLICASETS,
    ),
]


HPA_OPTIONS = ("--release-values", "--expect-min-replicas", "--no-hpa")


def run_main(api_client: ApiClient, snapshots: Sequence[Snapshot], *args: str) -> tuple[int, FakeCluster, FakeClock]:
    """main() against the fake cluster; the HPA is expected at 3-10 unless the arguments say otherwise."""
    cluster, clock = FakeCluster(api_client, snapshots), FakeClock()
    expect = [] if set(args) & set(HPA_OPTIONS) else ["--expect-min-replicas", "3", "--expect-max-replicas", "10"]
    argv = ["--namespace", NAMESPACE, "--release", "prod", "--interval", "5", *expect, *args]
    code = rc.main(argv, cluster.apis(), clock=clock, sleep=clock.sleep)
    return code, cluster, clock


def test_loop_polls_prints_waiting_lines_and_exits_0(api_client: ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    code, cluster, clock = run_main(api_client, ROLLOUT)
    out = capsys.readouterr()
    assert code == 0, out
    assert cluster.polls == 3
    assert clock.sleeps == [5, 5]
    lines = out.out.splitlines()
    assert lines[0] == f"checking deployment {NAME} in namespace {NAMESPACE} (timeout 600s)"
    assert lines[1].startswith(f"waiting: deployment {NAME} generation 3 not observed yet")
    assert lines[2].startswith("waiting: 1/3 replicas updated; 3/4 pods ready (not ready: ")
    assert lines[3] == (
        f"rolled out: deployment {NAME} in namespace {NAMESPACE}: "
        "3/3 replicas updated and available, 3 pods ready, HPA 3-10 replicas"
    )
    assert len(lines) == 4
    assert out.err == ""
    assert ("pods", NAMESPACE, SELECTOR_STRING, rc.REQUEST_TIMEOUT_S) in cluster.calls
    assert ("replicasets", NAMESPACE, SELECTOR_STRING, rc.REQUEST_TIMEOUT_S) in cluster.calls
    assert ("hpa", NAMESPACE, NAME, rc.REQUEST_TIMEOUT_S) in cluster.calls


def test_missing_hpa_waits_then_fails_at_the_timeout(api_client: ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    snapshots = [Snapshot(deployment_doc(), healthy_pods(), hpa=None)]
    code, cluster, clock = run_main(api_client, snapshots, "--timeout", "12")
    out = capsys.readouterr()
    assert code == 1
    assert clock.sleeps == [5, 5, 2]  # never sleeps past the deadline
    assert cluster.polls == 4
    assert out.out.count(f"waiting: HPA {NAME} not found\n") == 4
    assert out.err == f"rollout check failed: timed out after 12s; still waiting: HPA {NAME} not found\n"


def test_no_hpa_skips_the_hpa(api_client: ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    snapshots = [Snapshot(deployment_doc(), healthy_pods(), hpa=None)]
    code, cluster, _ = run_main(api_client, snapshots, "--no-hpa")
    out = capsys.readouterr().out
    assert code == 0
    assert "HPA" not in out
    assert not [call for call in cluster.calls if call[0] == "hpa"]


def test_a_failure_exits_1_at_once(api_client: ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    crashing = [pod_doc("a1b2c"), pod_doc("x9y8z", ready=False, waiting_reason="CrashLoopBackOff")]
    snapshots = [
        Snapshot(deployment_doc(available=2)),
        Snapshot(deployment_doc(available=2), crashing),
        Snapshot(deployment_doc(), healthy_pods()),
    ]
    code, cluster, _ = run_main(api_client, snapshots)
    err = capsys.readouterr().err
    assert code == 1
    assert cluster.polls == 2
    assert err.startswith(f"rollout check failed: pod {NAME}-{NEW_HASH}-x9y8z container visionserve: CrashLoopBackOff")


def test_wrong_hpa_bounds_exit_1(api_client: ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    snapshots = [Snapshot(deployment_doc(), healthy_pods(), hpa=hpa_doc(3, 10))]
    code, _, _ = run_main(api_client, snapshots, "--expect-min-replicas", "2", "--expect-max-replicas", "6")
    err = capsys.readouterr().err
    assert code == 1
    assert "minReplicas=3 maxReplicas=10, expected minReplicas=2 maxReplicas=6" in err


def test_api_errors_wait_but_forbidden_fails(api_client: ApiClient, capsys: pytest.CaptureFixture[str]) -> None:
    snapshots = [
        Snapshot(None),
        Snapshot(deployment_doc(), error=ApiException(status=503, reason="Service Unavailable")),
        Snapshot(deployment_doc(), healthy_pods()),
    ]
    code, _, _ = run_main(api_client, snapshots)
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[1] == f"waiting: deployment {NAME} not found in namespace {NAMESPACE}"
    assert lines[2] == "waiting: API error 503 Service Unavailable"
    forbidden = [Snapshot(deployment_doc(), error=ApiException(status=403, reason="Forbidden"))]
    code, _, _ = run_main(api_client, forbidden)
    assert code == 1
    assert capsys.readouterr().err == "rollout check failed: API answered 403 Forbidden\n"


def test_name_overrides_the_release(api_client: ApiClient) -> None:
    cluster, clock = FakeCluster(api_client, [Snapshot(deployment_doc(), healthy_pods())]), FakeClock()
    argv = ["--namespace", NAMESPACE, "--name", "custom", "--no-hpa"]
    rc.main(argv, cluster.apis(), clock=clock, sleep=clock.sleep)
    assert cluster.calls[0] == ("deployment", NAMESPACE, "custom", rc.REQUEST_TIMEOUT_S)


# Command line -----------------------------------------------------------------------------------------------


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rc.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--namespace", "--release", "--name", "--timeout", "--interval", "--no-hpa", "--in-cluster"):
        assert option in out
    assert "--expect-min-replicas" in out
    assert "--kubeconfig" in out


def test_help_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: rollout_check.py")


@pytest.mark.parametrize(
    "argv",
    [
        ["--release", "prod"],  # no namespace
        ["--namespace", NAMESPACE],  # neither release nor name
        ["--namespace", NAMESPACE, "--release", "prod", "--name", "x"],
        ["--namespace", NAMESPACE, "--release", "prod", "--expect-min-replicas", "5", "--expect-max-replicas", "4"],
        ["--namespace", NAMESPACE, "--release", "prod", "--kubeconfig", "k", "--in-cluster"],
        ["--namespace", NAMESPACE, "--release", "prod", "--timeout", "0"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        rc.main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_without_kubeconfig_or_cluster_it_falls_back_to_in_cluster_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    assert rc.main(["--namespace", NAMESPACE, "--release", "prod", "--no-hpa"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rollout check failed: no cluster configuration: ")
    assert "Service host/port is not set" in err  # the in-cluster loader's complaint: the fallback ran
