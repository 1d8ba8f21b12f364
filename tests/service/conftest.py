"""A real gunicorn server with 2 workers on 127.0.0.1, random weights chosen explicitly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.launcher import LocalServer

RANDOM_SETTINGS = {
    "weights": "random",
    "cifar_head": "random",
    "workers": 2,
    "torch_threads": 1,
    "max_batch_size": 8,
    "max_wait_ms": 20,
}


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    with LocalServer(RANDOM_SETTINGS) as running:
        yield running
