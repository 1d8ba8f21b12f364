"""Every ci/*-values.yaml renders, lints, and passes Kubernetes' own schemas (and the CRDs' fields)."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest

from tests.chart.crd_schemas import CRD_SCHEMAS
from tests.chart.rendering import CHART, CI_VALUES, NAMESPACE, render, values_of

OLDEST_KUBERNETES, NEWEST_KUBERNETES = "1.29.0", "1.37.0"  # Chart.yaml kubeVersion: >=1.29.0-0


def test_chart_yaml_declares_what_users_check() -> None:
    with helm.Chart.load(CHART) as chart:
        metadata = chart.metadata
    assert metadata["kubeVersion"] == f">={OLDEST_KUBERNETES}-0"
    assert metadata["appVersion"] and metadata["icon"].startswith("https://")


def test_lint_reports_no_errors(ci_values: dict) -> None:
    report = helm.lint(CHART, ci_values, strict=True, namespace=NAMESPACE)
    errors = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and errors == [], report


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, NEWEST_KUBERNETES])
def test_builtin_objects_pass_strict_kubernetes_schemas(ci_values: dict, version: str) -> None:
    documents = render(ci_values)
    builtin = [doc for doc in documents if doc["kind"] not in CRD_SCHEMAS]
    assert {"Deployment", "Service", "ConfigMap", "Pod"} <= {doc["kind"] for doc in builtin}
    for doc in builtin:
        kubernetes_validate.validate(doc, version, strict=True)  # raises on unknown or mistyped fields


def _enables_crd_objects(values: dict) -> bool:
    """Whether the values turn on an object of a CRD (the Prometheus Operator's, KEDA's, Gateway API's, the VPA's)."""
    monitoring = values.get("monitoring", {})
    return (
        any(monitoring.get(key, {}).get("enabled") for key in ("serviceMonitor", "podMonitor", "prometheusRule"))
        or values.get("autoscaling", {}).get("keda", {}).get("enabled", False)
        or any(values.get(key, {}).get("enabled") for key in ("httpRoute", "verticalPodAutoscaler"))
    )


def _crd_objects(values: dict) -> list[dict]:
    return [doc for doc in render(values) if doc["kind"] in CRD_SCHEMAS]


CRD_CI_VALUES = [path for path in CI_VALUES if _enables_crd_objects(values_of(path))]


@pytest.mark.parametrize("path", CRD_CI_VALUES, ids=lambda path: path.name.removesuffix("-values.yaml"))
def test_crd_objects_match_their_crd_fields(path: Path) -> None:
    checked = 0
    for doc in _crd_objects(values_of(path)):
        jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
        checked += 1
    assert checked > 0, f"{path.name} enables a CRD object but rendered none"


def test_every_crd_kind_is_checked_by_some_ci_values() -> None:
    """Each CRD kind the chart can write is rendered by a ci/ file, so its schema check runs in CI too."""
    rendered = {doc["kind"] for path in CRD_CI_VALUES for doc in _crd_objects(values_of(path))}
    assert rendered == set(CRD_SCHEMAS)


def test_the_ci_values_that_render_crd_objects_are_exactly_those_checked() -> None:
    rendering = [path for path in CI_VALUES if _crd_objects(values_of(path))]
    assert rendering and rendering == CRD_CI_VALUES


def test_the_crd_check_catches_a_wrong_field() -> None:
    monitor = next(
        doc for doc in render({"monitoring": {"serviceMonitor": {"enabled": True}}}) if doc["kind"] == "ServiceMonitor"
    )
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, CRD_SCHEMAS["ServiceMonitor"])


def test_the_crd_check_catches_a_number_where_keda_wants_a_string() -> None:
    scaled = next(doc for doc in _crd_objects({"autoscaling": {"keda": {"enabled": True}}}))
    jsonschema.validate(scaled, CRD_SCHEMAS["ScaledObject"])
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 4
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, CRD_SCHEMAS["ScaledObject"])


def test_every_object_is_in_the_release_namespace_with_standard_labels(ci_values: dict) -> None:
    for doc in render(ci_values):
        metadata = doc["metadata"]
        assert metadata["namespace"] == NAMESPACE, doc["kind"]
        assert len(metadata["name"]) <= 63
        labels = metadata["labels"]
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert key in labels, (doc["kind"], key)


def test_long_release_names_are_cut_to_63_characters() -> None:
    for doc in render({"monitoring": {"dashboards": {"enabled": True}}}, release="r" * 60):
        assert len(doc["metadata"]["name"]) <= 63
