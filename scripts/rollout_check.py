"""Post-deploy check: wait until the visionserve Deployment has rolled out, its pods are Ready and its HPA is right.

Run after `helm upgrade --install` (e.g. in the GitHub Actions deploy job):

    helm get values prod --namespace ml --all --output json > prod-values.json
    python scripts/rollout_check.py --namespace ml --release prod --release-values prod-values.json
    python scripts/rollout_check.py --namespace ml --name visionserve-canary --no-hpa --timeout 300

The expected HPA bounds come from the release's own computed values (`--release-values`: autoscaling.enabled,
minReplicas, maxReplicas), or are given (`--expect-min-replicas`/`--expect-max-replicas`), or the HPA is not
checked (`--no-hpa`); there is no built-in guess, which would fail every release with other bounds.

It prints one "waiting: ..." line per poll, then a one-line summary and exits 0, or the reason and exits 1
(a pod in CrashLoopBackOff/ImagePullBackOff/ErrImagePull, ProgressDeadlineExceeded, wrong HPA bounds, or the
timeout). The decisions are pure functions of the client's model objects; `wait_for_rollout` is the loop.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import urllib3
import yaml
from kubernetes.client import (
    AppsV1Api,
    AutoscalingV2Api,
    CoreV1Api,
    V1Deployment,
    V1Pod,
    V1PodList,
    V1ReplicaSet,
    V1ReplicaSetList,
    V2HorizontalPodAutoscaler,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException, load_incluster_config, load_kube_config

CHART_NAME = "visionserve"
DNS_LABEL_MAX = 63
FATAL_WAITING_REASONS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"})
FATAL_API_STATUSES = frozenset({401, 403})  # credentials or RBAC: polling again will not help
FINISHED_POD_PHASES = frozenset({"Succeeded", "Failed"})  # e.g. evicted pods, which linger until garbage-collected
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH_LABEL = "pod-template-hash"
REQUEST_TIMEOUT_S = 30.0  # per API call: the client has none by default, and a hung call would outlive --timeout

T = TypeVar("T")


class State(Enum):
    """Outcome of one check."""

    DONE = "done"
    WAITING = "waiting"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    """A check's outcome and why."""

    state: State
    reason: str

    @classmethod
    def done(cls, reason: str) -> Result:
        return cls(State.DONE, reason)

    @classmethod
    def waiting(cls, reason: str) -> Result:
        return cls(State.WAITING, reason)

    @classmethod
    def failed(cls, reason: str) -> Result:
        return cls(State.FAILED, reason)


@dataclass(frozen=True)
class Bounds:
    """The HPA's expected minReplicas and maxReplicas."""

    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class Target:
    """What to check: the Deployment (and HPA) name, its namespace and the expected HPA bounds (None: no HPA)."""

    namespace: str
    name: str
    hpa: Bounds | None = None


def bounds_from_values(values: Mapping[str, Any]) -> Bounds | None:
    """The HPA bounds a release's computed values ask for (`helm get values --all`); None when autoscaling is off.

    Raises ValueError when the values do not say (not the chart's values, or not computed with --all).
    """
    autoscaling = values.get("autoscaling")
    if not isinstance(autoscaling, Mapping) or not isinstance(autoscaling.get("enabled"), bool):
        raise ValueError("no autoscaling.enabled in the values: pass `helm get values RELEASE --all` output")
    if not autoscaling["enabled"]:
        return None
    bounds = (autoscaling.get("minReplicas"), autoscaling.get("maxReplicas"))
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in bounds):
        raise ValueError(f"autoscaling.minReplicas/maxReplicas are not integers: {bounds}")
    return Bounds(*bounds)


def read_release_values(path: Path) -> Mapping[str, Any]:
    """The values file written by `helm get values --all --output json` (or yaml)."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, Mapping):
        raise ValueError(f"{path} does not hold a mapping of values")
    return document


def chart_fullname(release: str, chart: str = CHART_NAME) -> str:
    """The chart's `visionserve.fullname`: the release when it contains the chart name, else release-chart."""
    name = release if chart in release else f"{release}-{chart}"
    return name[:DNS_LABEL_MAX].removesuffix("-")


# Pure decisions ---------------------------------------------------------------------------------------------


def desired_replicas(deployment: V1Deployment) -> int:
    """spec.replicas, or status.replicas when the spec leaves it unset."""
    if deployment.spec is not None and deployment.spec.replicas is not None:
        return deployment.spec.replicas
    return (deployment.status.replicas if deployment.status else None) or 0


def _progress_deadline_exceeded(deployment: V1Deployment) -> str | None:
    """The Progressing condition's message when its reason is ProgressDeadlineExceeded."""
    for condition in deployment.status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return condition.message or "ProgressDeadlineExceeded"
    return None


def check_deployment(deployment: V1Deployment) -> Result:
    """Whether the rollout is complete, the same test as `kubectl rollout status`.

    The generation is checked first: until the controller has seen the new spec, the conditions still
    describe the previous rollout (which may have exceeded its deadline before this fix was deployed).
    """
    name = deployment.metadata.name
    status = deployment.status
    if status is None:
        return Result.waiting(f"deployment {name} has no status yet")
    generation = deployment.metadata.generation or 0
    observed = status.observed_generation or 0
    if observed < generation:
        return Result.waiting(f"deployment {name} generation {generation} not observed yet (observed {observed})")
    deadline_message = _progress_deadline_exceeded(deployment)
    if deadline_message is not None:
        return Result.failed(f"deployment {name} exceeded its progress deadline: {deadline_message}")
    desired = desired_replicas(deployment)
    updated = status.updated_replicas or 0
    total = status.replicas or 0
    available = status.available_replicas or 0
    if updated < desired:
        return Result.waiting(f"{updated}/{desired} replicas updated")
    if total > updated:
        return Result.waiting(f"{total - updated} old replicas pending termination ({updated}/{total} updated)")
    if available < updated:
        return Result.waiting(f"{available}/{updated} updated replicas available")
    return Result.done(f"{available}/{desired} replicas updated and available")


def _fatal_container_state(pod: V1Pod) -> str | None:
    """'container c: Reason (message)' when a container of the pod waits for a reason that will not heal."""
    statuses = [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
    for container in statuses:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in FATAL_WAITING_REASONS:
            detail = f" ({waiting.message})" if waiting.message else ""
            return f"container {container.name}: {waiting.reason}{detail}"
    return None


def is_pod_ready(pod: V1Pod) -> bool:
    """Whether the pod's Ready condition is True."""
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def is_pod_live(pod: V1Pod) -> bool:
    """Neither terminating nor finished: a pod the ReplicaSet counts."""
    phase = pod.status.phase if pod.status else None
    return pod.metadata.deletion_timestamp is None and phase not in FINISHED_POD_PHASES


def current_template_hash(deployment: V1Deployment, replicasets: Sequence[V1ReplicaSet]) -> str | None:
    """pod-template-hash of the Deployment's current ReplicaSet; None until the controller has seen the spec."""
    status = deployment.status
    if status is None or (status.observed_generation or 0) < (deployment.metadata.generation or 0):
        return None  # the revision annotation may still name the previous ReplicaSet
    revision = (deployment.metadata.annotations or {}).get(REVISION_ANNOTATION)
    if revision is None:
        return None
    for replicaset in replicasets:
        owners = replicaset.metadata.owner_references or []
        owned = any(ref.kind == "Deployment" and ref.name == deployment.metadata.name for ref in owners)
        if owned and (replicaset.metadata.annotations or {}).get(REVISION_ANNOTATION) == revision:
            return (replicaset.metadata.labels or {}).get(TEMPLATE_HASH_LABEL)
    return None


def check_pods(pods: Sequence[V1Pod], expected: int, template_hash: str | None) -> Result:
    """Fails on a crash-looping or unpullable container of the current revision; done when `expected` live pods
    are all Ready.

    Pods of an older revision (`template_hash` differs, or is not known yet) never fail the check: deploying a fix
    for a crash-looping release must not fail on the old pods it is replacing; the Deployment check waits for them.
    """
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        current = template_hash is not None and (pod.metadata.labels or {}).get(TEMPLATE_HASH_LABEL) == template_hash
        fatal = _fatal_container_state(pod) if current and pod.status else None
        if fatal is not None:
            return Result.failed(f"pod {pod.metadata.name} {fatal}")
    live = [pod for pod in pods if is_pod_live(pod)]
    not_ready = sorted(pod.metadata.name for pod in live if not is_pod_ready(pod))
    ready = len(live) - len(not_ready)
    if not_ready:
        return Result.waiting(f"{ready}/{len(live)} pods ready (not ready: {', '.join(not_ready)})")
    if ready < expected:
        return Result.waiting(f"{ready}/{expected} pods ready")
    return Result.done(f"{ready} pods ready")


def check_hpa(hpa: V2HorizontalPodAutoscaler | None, target: Target) -> Result:
    """Waits while the HPA is missing; fails when it targets another object or its bounds differ."""
    expected = target.hpa
    if expected is None:
        return Result.done("no HPA expected")
    if hpa is None:
        return Result.waiting(f"HPA {target.name} not found")
    spec = hpa.spec
    ref = spec.scale_target_ref
    if ref.kind != "Deployment" or ref.name != target.name:
        return Result.failed(f"HPA {target.name} scales {ref.kind}/{ref.name}, not Deployment/{target.name}")
    min_replicas = 1 if spec.min_replicas is None else spec.min_replicas  # the API's default
    if (min_replicas, spec.max_replicas) != (expected.min_replicas, expected.max_replicas):
        return Result.failed(
            f"HPA {target.name} bounds are minReplicas={min_replicas} maxReplicas={spec.max_replicas}, "
            f"expected minReplicas={expected.min_replicas} maxReplicas={expected.max_replicas}"
        )
    return Result.done(f"HPA {min_replicas}-{spec.max_replicas} replicas")


def combine(results: Sequence[Result]) -> Result:
    """The first failure; else every waiting reason, joined; else every done summary, joined."""
    for state in (State.FAILED, State.WAITING):
        reasons = [result.reason for result in results if result.state is state]
        if reasons:
            return Result(state, reasons[0] if state is State.FAILED else "; ".join(reasons))
    return Result.done(", ".join(result.reason for result in results))


def evaluate(
    target: Target,
    deployment: V1Deployment | None,
    replicasets: Sequence[V1ReplicaSet],
    pods: Sequence[V1Pod],
    hpa: V2HorizontalPodAutoscaler | None,
) -> Result:
    """Every check of one poll, combined."""
    if deployment is None:
        return Result.waiting(f"deployment {target.name} not found in namespace {target.namespace}")
    template_hash = current_template_hash(deployment, replicasets)
    results = [check_deployment(deployment), check_pods(pods, desired_replicas(deployment), template_hash)]
    if target.hpa is not None:
        results.append(check_hpa(hpa, target))
    return combine(results)


# Fetching ---------------------------------------------------------------------------------------------------


class AppsApi(Protocol):
    def read_namespaced_deployment(self, name: str, namespace: str, *, _request_timeout: float) -> V1Deployment: ...

    def list_namespaced_replica_set(
        self, namespace: str, *, label_selector: str, _request_timeout: float
    ) -> V1ReplicaSetList: ...


class CoreApi(Protocol):
    def list_namespaced_pod(self, namespace: str, *, label_selector: str, _request_timeout: float) -> V1PodList: ...


class AutoscalingApi(Protocol):
    def read_namespaced_horizontal_pod_autoscaler(
        self, name: str, namespace: str, *, _request_timeout: float
    ) -> V2HorizontalPodAutoscaler: ...


@dataclass(frozen=True)
class Apis:
    """The three API groups the check reads (kubernetes.client's, or fakes in tests)."""

    apps: AppsApi
    core: CoreApi
    autoscaling: AutoscalingApi


class FatalApiError(Exception):
    """An API answer that retrying will not change."""


def label_selector(deployment: V1Deployment) -> str:
    """'k=v,k2=v2' from the Deployment's spec.selector.match_labels."""
    labels = deployment.spec.selector.match_labels or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _read_or_none(read: Callable[[], T]) -> T | None:
    """The object, or None when the API answers 404."""
    try:
        return read()
    except ApiException as error:
        if error.status == 404:
            return None
        if error.status in FATAL_API_STATUSES:
            raise FatalApiError(f"API answered {error.status} {error.reason}") from error
        raise


def observe(target: Target, apis: Apis) -> Result:
    """Fetch the Deployment, its ReplicaSets and pods, and the HPA, and decide.

    A 404 means not there yet; other API errors (but 401/403) and connection errors mean waiting for this poll.
    """
    name, namespace, timeout = target.name, target.namespace, REQUEST_TIMEOUT_S
    try:
        deployment = _read_or_none(
            lambda: apis.apps.read_namespaced_deployment(name, namespace, _request_timeout=timeout)
        )
        replicasets: list[V1ReplicaSet] = []
        pods: list[V1Pod] = []
        if deployment is not None:
            selector = label_selector(deployment)
            replicasets = apis.apps.list_namespaced_replica_set(
                namespace, label_selector=selector, _request_timeout=timeout
            ).items
            pods = apis.core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=timeout).items
        hpa = None
        if target.hpa is not None:
            hpa = _read_or_none(
                lambda: apis.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                    name, namespace, _request_timeout=timeout
                )
            )
    except FatalApiError as error:
        return Result.failed(str(error))
    except ApiException as error:
        return Result.waiting(f"API error {error.status} {error.reason}")
    except urllib3.exceptions.HTTPError as error:
        return Result.waiting(f"API unreachable: {error}")
    return evaluate(target, deployment, replicasets, pods, hpa)


# The loop ---------------------------------------------------------------------------------------------------


def wait_for_rollout(
    target: Target,
    apis: Apis,
    timeout: float,
    interval: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = print,
) -> Result:
    """Poll until done or failed, echoing each waiting reason; a failure naming the last reason at the timeout."""
    deadline = clock() + timeout
    while True:
        result = observe(target, apis)
        if result.state is not State.WAITING:
            return result
        echo(f"waiting: {result.reason}")
        remaining = deadline - clock()
        if remaining <= 0:
            return Result.failed(f"timed out after {timeout:g}s; still waiting: {result.reason}")
        sleep(min(interval, remaining))


# Command line -----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True, help="namespace of the release")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--release", help="Helm release; the objects are named by the chart's fullname rule")
    who.add_argument("--name", help="name of the Deployment and HPA (e.g. with fullnameOverride)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait in all (default 600)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between polls (default 5)")
    expect = parser.add_argument_group("expected HPA (one of --release-values, both --expect-*, or --no-hpa)")
    expect.add_argument(
        "--release-values",
        type=Path,
        help="the release's computed values (helm get values RELEASE --all --output json): autoscaling says",
    )
    expect.add_argument("--expect-min-replicas", type=int, help="HPA minReplicas")
    expect.add_argument("--expect-max-replicas", type=int, help="HPA maxReplicas")
    expect.add_argument("--no-hpa", action="store_true", help="autoscaling is disabled: do not check an HPA")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    where.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.interval <= 0:
        parser.error("--timeout and --interval must be positive")
    given = [args.release_values is not None, args.expect_min_replicas is not None, args.no_hpa]
    if (args.expect_min_replicas is None) != (args.expect_max_replicas is None):
        parser.error("--expect-min-replicas and --expect-max-replicas go together")
    if sum(given) != 1:
        parser.error("say what HPA to expect: --release-values FILE, --expect-min/max-replicas, or --no-hpa")
    if args.expect_min_replicas is not None and args.expect_min_replicas > args.expect_max_replicas:
        parser.error("--expect-min-replicas must not exceed --expect-max-replicas")
    if args.release_values is not None:
        try:
            args.bounds = bounds_from_values(read_release_values(args.release_values))
        except (OSError, ValueError, yaml.YAMLError) as error:
            parser.error(f"--release-values {args.release_values}: {error}")
    elif args.no_hpa:
        args.bounds = None
    else:
        args.bounds = Bounds(args.expect_min_replicas, args.expect_max_replicas)
    return args


def load_client_config(kubeconfig: str | None, in_cluster: bool) -> None:
    """Configure the client: in-cluster, the given kubeconfig, or the default kubeconfig then in-cluster."""
    if in_cluster:
        load_incluster_config()
    elif kubeconfig is not None:
        load_kube_config(config_file=kubeconfig)
    else:
        try:
            load_kube_config()
        except ConfigException:
            load_incluster_config()


def default_apis() -> Apis:
    """The real API groups, on the configured client."""
    return Apis(apps=AppsV1Api(), core=CoreV1Api(), autoscaling=AutoscalingV2Api())


def target_from_args(args: argparse.Namespace) -> Target:
    """The Target the options describe."""
    return Target(namespace=args.namespace, name=args.name or chart_fullname(args.release), hpa=args.bounds)


def main(
    argv: Sequence[str] | None = None,
    apis: Apis | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run the check; 0 when rolled out, 1 on failure or timeout."""
    args = parse_args(argv)
    target = target_from_args(args)

    def echo(line: str) -> None:
        print(line, flush=True)  # unbuffered in CI logs, where stdout is a pipe

    if apis is None:
        try:
            load_client_config(args.kubeconfig, args.in_cluster)
        except ConfigException as error:
            print(f"rollout check failed: no cluster configuration: {error}", file=sys.stderr, flush=True)
            return 1
        apis = default_apis()
    echo(f"checking deployment {target.name} in namespace {target.namespace} (timeout {args.timeout:g}s)")
    result = wait_for_rollout(target, apis, args.timeout, args.interval, clock=clock, sleep=sleep, echo=echo)
    if result.state is State.DONE:
        echo(f"rolled out: deployment {target.name} in namespace {target.namespace}: {result.reason}")
        return 0
    print(f"rollout check failed: {result.reason}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
