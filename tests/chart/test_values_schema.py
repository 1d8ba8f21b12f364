"""values.schema.json refuses wrong values with a message that names the key; values.yaml is documented."""

from __future__ import annotations

import re

import helm_python as helm
import pytest

from tests.chart.rendering import CHART, NAMESPACE
from tests.helpers import run_script

WRONG_VALUES = {
    "minimum replicas zero": ({"autoscaling": {"minReplicas": 0}}, "/autoscaling/minReplicas"),
    "typo in a top-level key": ({"autoscalling": {"enabled": True}}, "autoscalling"),
    "typo in a nested key": ({"gpu": {"enable": True}}, "enable"),
    "latest tag": ({"image": {"tag": "latest"}}, "/image/tag"),
    "wrong type": ({"service": {"port": "eighty"}}, "/service/port"),
    "enum": ({"service": {"type": "ExternalName"}}, "/service/type"),
    "service setting out of range": ({"config": {"max_batch_size": 0}}, "/config/max_batch_size"),
    "unknown service setting": ({"config": {"max_batch": 8}}, "max_batch"),
    "chart-owned setting in config": ({"config": {"device": "cuda"}}, "device"),
    "bad cpu quantity": ({"resources": {"limits": {"cpu": "two", "memory": "1Gi"}}}, "/resources/limits/cpu"),
    "bad sha256": ({"config": {"weights_sha256": "abc"}}, "/config/weights_sha256"),
    "weights source": ({"weights": {"source": "s3"}}, "/weights/source"),
    "negative cache size": ({"cache": {"maxEntries": -1}}, "/cache/maxEntries"),
    "cache bytes below the service's least": ({"cache": {"maxBytes": 1024}}, "/cache/maxBytes"),
    "cache setting in config": ({"config": {"cache_max_entries": 100}}, "cache_max_entries"),
}


@pytest.mark.parametrize("case", sorted(WRONG_VALUES))
def test_wrong_values_fail_with_a_message_naming_the_key(case: str) -> None:
    values, named = WRONG_VALUES[case]
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values, name="visionserve", namespace=NAMESPACE)
    assert named in str(caught.value)


def test_min_above_max_replicas_fails_with_both_named() -> None:
    message = r"minReplicas \(5\) must not exceed autoscaling.maxReplicas \(4\)"
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmError, match=message):
        chart.render({"autoscaling": {"minReplicas": 5, "maxReplicas": 4}}, name="visionserve", namespace=NAMESPACE)


def test_the_default_values_pass_the_schema() -> None:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)


def test_the_schema_is_generated_from_the_services_settings() -> None:
    done = run_script("scripts/chart_schema.py", "--check")
    assert done.returncode == 0, done.stderr


def test_the_readme_values_table_is_current() -> None:
    done = run_script("scripts/values_table.py", "--check")
    assert done.returncode == 0, done.stderr


def test_every_values_key_has_a_comment() -> None:
    """Each mapping key in values.yaml is preceded by a comment line (list items are data, not keys)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    data_blocks = ("behavior:", "hosts:", "command:", "args:", "updateStrategy:", "parentRefs:", "matches:")
    skip_below: int | None = None
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        if skip_below is not None and indent > skip_below:
            continue
        skip_below = indent if line.strip() in data_blocks else None
        previous = next((lines[i].strip() for i in range(number - 1, -1, -1) if lines[i].strip()), "")
        if not previous.startswith("#"):
            undocumented.append(f"line {number + 1}: {line.strip()}")
    assert not undocumented, undocumented
