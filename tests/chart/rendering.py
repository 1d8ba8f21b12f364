"""Render the chart with Helm's own Go SDK (helm-python-sdk), as `helm template` would."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import yaml

from app.settings import Settings, load_settings
from tests.helpers import ROOT

CHART = ROOT / "charts" / "visionserve"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE, NAMESPACE = "visionserve", "ml-serving"


def values_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def render(values: dict | None = None, release: str = RELEASE, chart_dir: Path = CHART) -> list[dict]:
    """Every object the chart renders (helm test hooks included), NOTES.txt left out."""
    with helm.Chart.load(chart_dir) as chart:
        rendered = chart.render(values or {}, name=release, namespace=NAMESPACE)
    return [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def config_yaml(documents: list[dict]) -> str:
    """The service's config.yaml, as the chart's ConfigMap holds it."""
    return next(d for d in documents if d["kind"] == "ConfigMap" and "config.yaml" in d["data"])["data"]["config.yaml"]


def service_config(documents: list[dict], tmp_path: Path) -> Settings:
    """The ConfigMap's config.yaml, read by the service's own settings loader."""
    config = tmp_path / "config.yaml"
    config.write_text(config_yaml(documents))
    return load_settings(environ={}, config_file=config)


def pod_specs(documents: list[dict]) -> list[dict]:
    """The pod spec of the Deployment and of every bare Pod (the helm test)."""
    return [doc["spec"]["template"]["spec"] for doc in documents if doc["kind"] == "Deployment"] + [
        doc["spec"] for doc in documents if doc["kind"] == "Pod"
    ]


def notes(values: dict | None = None) -> str:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def one(documents: list[dict], kind: str) -> dict:
    found = [doc for doc in documents if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def kinds(documents: list[dict]) -> set[str]:
    return {doc["kind"] for doc in documents}
