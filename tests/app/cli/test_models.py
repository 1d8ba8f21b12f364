"""`visionserve models` against a real server: a few lines a person reads, or the whole answer."""

from __future__ import annotations

import json

import pytest
import requests

from tests.app.cli.command import visionserve
from tests.harness.local_server import LocalServer, free_port


@pytest.mark.service
def test_models_summarises_what_the_server_serves(server: LocalServer) -> None:
    done = visionserve("models", "--url", server.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("model     resnet50 version ")
    assert lines[1].startswith("runtime   torch fp32 on cpu")  # the fixture's server runs the torch runtime
    assert any(line.startswith("head      imagenet: 1000 classes, random initialisation") for line in lines)
    assert any(line.startswith("head      cifar10: 10 classes") for line in lines)
    assert lines[-1] == "WARNING   random weights: predictions are meaningless"
    assert len(done.stdout) < 1000  # not the 1,010 labels


@pytest.mark.service
def test_models_json_is_the_whole_answer(server: LocalServer) -> None:
    done = visionserve("models", "--url", server.url, "--json")
    assert json.loads(done.stdout) == requests.get(f"{server.url}/v1/models", timeout=10).json()


def test_models_fails_in_one_line_when_nothing_answers() -> None:
    done = visionserve("models", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "3")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("visionserve models: ")
