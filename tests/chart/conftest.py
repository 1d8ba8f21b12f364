"""Chart fixtures: every CI values file."""

from __future__ import annotations

import pytest

from tests.chart.rendering import CI_VALUES, values_of


@pytest.fixture(params=CI_VALUES, ids=lambda path: path.name.removesuffix("-values.yaml"))
def ci_values(request: pytest.FixtureRequest) -> dict:
    return values_of(request.param)
