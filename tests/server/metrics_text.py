"""Read samples out of a Prometheus text exposition."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in an exposition."""
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def samples(url: str) -> list[tuple[str, dict[str, str], float]]:
    return parse(requests.get(f"{url}/metrics", timeout=10).text)


def total(url: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    return sum(
        value
        for sample, found, value in samples(url)
        if sample == name and all(found.get(k) == v for k, v in labels.items())
    )
