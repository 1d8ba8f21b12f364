"""Render the chart with Helm's own Go SDK (helm-python-sdk), as `helm template` would."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest
import yaml

from tests.helpers import ROOT

CHART = ROOT / "charts" / "visionserve"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
RELEASE, NAMESPACE = "visionserve", "ml-serving"


def values_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def render(values: dict | None = None, release: str = RELEASE) -> list[dict]:
    """Every object the chart renders (helm test hooks included), NOTES.txt left out."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name=release, namespace=NAMESPACE)
    return [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
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


@pytest.fixture(params=CI_VALUES, ids=lambda path: path.name.removesuffix("-values.yaml"))
def ci_values(request: pytest.FixtureRequest) -> dict:
    return values_of(request.param)
