"""Read samples out of a Prometheus text exposition."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


def samples(url: str) -> list[tuple[str, dict[str, str], float]]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def total(url: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    return sum(
        value
        for sample, found, value in samples(url)
        if sample == name and all(found.get(k) == v for k, v in labels.items())
    )
