"""KServe V1 against a real gunicorn, with plain `requests` (KServe's own client drags in its whole SDK): the
model's status, :predict in each accepted form, answers equal to /v1/predict's, and refusals in KServe's shape."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo

pytestmark = [pytest.mark.service]

PARAMS = {"heads": "imagenet,cifar10", "top_k": 3}


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [encode(photo("astronaut")), encode(photo("rocket"), "PNG")]


def _b64(image: bytes) -> str:
    return base64.b64encode(image).decode()


def _v1_predict(url: str, image: bytes) -> dict:
    response = requests.post(
        f"{url}/v1/predict", params=PARAMS, files={"image": image}, timeout=120
    )  # multipart: any image type
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]["heads"]


def _same(answer: dict, expected: dict) -> None:
    assert set(answer) == set(expected)
    for head, ranked in expected.items():
        assert [(e["label"], e["index"]) for e in answer[head]] == [(e["label"], e["index"]) for e in ranked]
        assert all(abs(a["score"] - e["score"]) < 1e-5 for a, e in zip(answer[head], ranked, strict=True))


def test_model_status(server: LocalServer) -> None:
    response = requests.get(f"{server.url}/v1/models/resnet50", timeout=30)
    assert response.status_code == 200 and response.json() == {"name": "resnet50", "ready": True}


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_predict_in_every_form_equals_v1_predict(server: LocalServer, images: list[bytes], key: str) -> None:
    body = {key: [{"image": {"b64": _b64(images[0])}}, {"b64": _b64(images[1])}]}
    response = requests.post(f"{server.url}/v1/models/resnet50:predict", params=PARAMS, json=body, timeout=120)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    for answer, image in zip(predictions, images, strict=True):
        _same(answer, _v1_predict(server.url, image))


def test_defaults_are_v1_predicts(server: LocalServer, images: list[bytes]) -> None:
    body = {"instances": [{"b64": _b64(images[0])}]}
    response = requests.post(f"{server.url}/v1/models/resnet50:predict", json=body, timeout=120)
    [answer] = response.json()["predictions"]
    assert list(answer) == ["imagenet"] and len(answer["imagenet"]) == 5


def test_refusals_are_kserve_errors(server: LocalServer, images: list[bytes]) -> None:
    cases = [
        ("resnet50", {"instances": [{"b64": _b64(images[0][:300])}]}, 400, "image"),
        ("resnet50", {"instances": [{"url": "http://example.com/cat.jpg"}]}, 400, "instances[0]"),
        ("resnet50", {"instances": [{"b64": "not base64!"}]}, 400, "base64"),
        ("resnet50", {"instances": [], "inputs": []}, 400, "exactly one"),
        ("resnet18", {"instances": [{"b64": _b64(images[0])}]}, 404, "resnet18"),
    ]
    for model, body, status, named in cases:
        response = requests.post(f"{server.url}/v1/models/{model}:predict", json=body, timeout=60)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert isinstance(error, str) and named in error, error
        assert response.json()["request_id"] == response.headers["X-Request-ID"]
    assert requests.get(f"{server.url}/v1/models/resnet18", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/v1/models/resnet50:predict", timeout=30).status_code == 405
