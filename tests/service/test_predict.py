"""Every input form, both heads and top_k, against a real gunicorn with 2 workers."""

from __future__ import annotations

import base64

import pytest
import requests

from app.launcher import LocalServer
from app.models.labels import CIFAR10_LABELS, IMAGENET_LABELS
from tests.conftest import encode, photo
from tests.helpers import PICTURES

pytestmark = pytest.mark.service


def _check_prediction(prediction: dict, heads: set[str], top_k: int) -> None:
    assert set(prediction["heads"]) == heads
    for head, entries in prediction["heads"].items():
        labels = IMAGENET_LABELS if head == "imagenet" else CIFAR10_LABELS
        assert len(entries) == min(top_k, len(labels))
        scores = [entry["score"] for entry in entries]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= score <= 1.0 for score in scores)
        for entry in entries:
            assert labels[entry["index"]] == entry["label"]
    assert prediction["batch_size"] >= 1
    assert set(prediction["timings_ms"]) == {"preprocess", "queue", "inference"}


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif"), ("BMP", "image/bmp")],
)
def test_raw_body_of_each_accepted_format(server: LocalServer, fmt: str, content_type: str) -> None:
    response = requests.post(
        f"{server.url}/v1/predict", data=encode(photo(), fmt), headers={"Content-Type": content_type}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "resnet50"
    assert "random" in body["weights"]["imagenet"]
    assert len(body["predictions"]) == 1
    _check_prediction(body["predictions"][0], {"imagenet"}, 5)


def test_both_heads_and_top_k_from_the_query(server: LocalServer, jpeg_bytes: bytes) -> None:
    response = requests.post(
        f"{server.url}/v1/predict?heads=imagenet,cifar10&top_k=3",
        data=jpeg_bytes,
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    _check_prediction(body["predictions"][0], {"imagenet", "cifar10"}, 3)
    assert set(body["weights"]) == {"imagenet", "cifar10"}


def test_top_k_above_a_heads_classes_returns_all_its_classes(server: LocalServer, jpeg_bytes: bytes) -> None:
    response = requests.post(
        f"{server.url}/v1/predict",
        params={"heads": "cifar10", "top_k": 20},
        data=jpeg_bytes,
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    entries = response.json()["predictions"][0]["heads"]["cifar10"]
    assert sorted(entry["label"] for entry in entries) == sorted(CIFAR10_LABELS)
    assert abs(sum(entry["score"] for entry in entries) - 1.0) < 1e-3


def test_multipart_every_file_part_is_an_image(server: LocalServer, jpeg_bytes: bytes, png_bytes: bytes) -> None:
    files = [
        ("first", ("cat.jpg", jpeg_bytes, "image/jpeg")),
        ("whatever", ("coffee.png", png_bytes, "image/png")),
        ("third", ("cat-again.jpg", jpeg_bytes, "application/octet-stream")),
    ]
    response = requests.post(
        f"{server.url}/v1/predict", files=files, data={"heads": "cifar10", "top_k": "2"}, timeout=30
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["image"] for p in predictions] == [0, 1, 2]
    for prediction in predictions:
        _check_prediction(prediction, {"cifar10"}, 2)
    assert predictions[0]["heads"] == predictions[2]["heads"]  # same picture, same answer


def test_json_base64_instances(server: LocalServer, jpeg_bytes: bytes, png_bytes: bytes) -> None:
    payload = {
        "instances": [
            {"b64": base64.b64encode(jpeg_bytes).decode()},
            {"b64": "data:image/png;base64," + base64.b64encode(png_bytes).decode()},
        ],
        "heads": ["imagenet", "cifar10"],
        "top_k": 4,
    }
    response = requests.post(f"{server.url}/v1/predict", json=payload, timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    for prediction in predictions:
        _check_prediction(prediction, {"imagenet", "cifar10"}, 4)


def test_the_same_image_gets_the_same_answer_from_both_workers(server: LocalServer, jpeg_bytes: bytes) -> None:
    answers = set()
    for _ in range(6):  # new connections spread across the two workers
        response = requests.post(
            f"{server.url}/v1/predict?top_k=1",
            data=jpeg_bytes,
            headers={"Content-Type": "image/jpeg", "Connection": "close"},
            timeout=30,
        )
        answers.add(response.json()["predictions"][0]["heads"]["imagenet"][0]["index"])
    assert len(answers) == 1


def test_models_says_random_in_plain_words(server: LocalServer) -> None:
    body = requests.get(f"{server.url}/v1/models", timeout=10).json()
    assert body["model"]["random_weights"] is True
    assert body["model"]["device"] == "cpu"
    assert body["model"]["torch_threads"] == 1  # as configured for each of the 2 workers
    for head, classes in (("imagenet", 1000), ("cifar10", 10)):
        described = body["heads"][head]
        assert described["available"] is True and described["classes"] == classes
        assert described["weights"]["kind"] == "random"
        assert "random" in described["weights"]["source"] and "NOT trained" in described["weights"]["source"]
    assert body["heads"]["imagenet"]["labels"][0] == IMAGENET_LABELS[0]
    assert body["batching"] == {"max_batch_size": 8, "max_wait_ms": 20.0, "max_queue": 32}


def test_health_and_readiness(server: LocalServer) -> None:
    assert requests.get(f"{server.url}/healthz", timeout=10).json() == {"status": "alive"}
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_openapi_describes_every_route(server: LocalServer) -> None:
    from app.main import ROUTES

    spec = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    served = {(route.path, method) for route in ROUTES for method in route.methods - {"HEAD"}}
    assert documented == served
    predict = spec["paths"]["/v1/predict"]["post"]
    assert {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/bmp",
        "multipart/form-data",
        "application/json",
    } == set(predict["requestBody"]["content"])
    assert {"200", "400", "413", "415", "503"} <= set(predict["responses"])
    assert {p["name"] for p in predict["parameters"]} == {"heads", "top_k"}


def test_unknown_routes_and_methods_answer_json(server: LocalServer) -> None:
    missing = requests.get(f"{server.url}/v2/nothing", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = requests.get(f"{server.url}/v1/predict", timeout=10)
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_every_kind_of_picture_classifies_over_http(server: LocalServer, kind: str) -> None:
    data = PICTURES[kind]()
    content_type = {
        b"\xff\xd8": "image/jpeg",
        b"\x89P": "image/png",
        b"RI": "image/webp",
        b"GI": "image/gif",
        b"BM": "image/bmp",
    }
    response = requests.post(
        f"{server.url}/v1/predict?top_k=1", data=data, timeout=30, headers={"Content-Type": content_type[data[:2]]}
    )
    assert response.status_code == 200, response.text
    _check_prediction(response.json()["predictions"][0], {"imagenet"}, 1)


def test_answers_match_the_openapi_schemas(server: LocalServer, jpeg_bytes: bytes) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    registry = Registry().with_resource("urn:spec", Resource.from_contents(spec, default_specification=DRAFT202012))

    def check(instance: dict, path: str, method: str, status: str) -> None:
        schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        ref = schema.get("$ref", "").replace("#", "urn:spec#") or None
        validator = Draft202012Validator({"$ref": ref} if ref else schema, registry=registry)
        errors = [error.message for error in validator.iter_errors(instance)]
        assert not errors, (path, status, errors)

    predicted = requests.post(
        f"{server.url}/v1/predict?heads=imagenet,cifar10",
        data=jpeg_bytes,
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    check(predicted.json(), "/v1/predict", "post", "200")
    refused = requests.post(
        f"{server.url}/v1/predict?top_k=0", data=jpeg_bytes, headers={"Content-Type": "image/jpeg"}, timeout=30
    )
    check(refused.json(), "/v1/predict", "post", "400")
    check(requests.get(f"{server.url}/v1/models", timeout=10).json(), "/v1/models", "get", "200")
    check(requests.get(f"{server.url}/readyz", timeout=10).json(), "/readyz", "get", "200")
