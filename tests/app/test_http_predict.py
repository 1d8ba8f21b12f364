"""Every input form, both heads and top_k, and every answer shape, against the app in process."""

from __future__ import annotations

import base64

import pytest
from starlette.testclient import TestClient

from app.models.labels import CIFAR10_LABELS, IMAGENET_LABELS
from tests.helpers import PICTURES, encode, photo


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
def test_raw_body_of_each_accepted_format(client: TestClient, fmt: str, content_type: str) -> None:
    response = client.post("/v1/predict", content=encode(photo(), fmt), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "resnet50"
    assert "random" in body["weights"]["imagenet"]
    assert len(body["predictions"]) == 1
    _check_prediction(body["predictions"][0], {"imagenet"}, 5)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/octet-stream"},
        {"Content-Type": "application/x-www-form-urlencoded"},  # curl --data-binary @photo.jpg without -H
        {},  # no Content-Type at all
    ],
    ids=["octet-stream", "form-urlencoded", "none"],
)
def test_a_raw_body_is_known_by_its_bytes(client: TestClient, fmt: str, headers: dict[str, str]) -> None:
    data = encode(photo(), fmt)
    sniffed = client.post("/v1/predict?heads=imagenet,cifar10&top_k=3", content=data, headers=headers)
    assert sniffed.status_code == 200, sniffed.text
    typed = client.post(
        "/v1/predict?heads=imagenet,cifar10&top_k=3", content=data, headers={"Content-Type": f"image/{fmt.lower()}"}
    )
    assert [p["heads"] for p in sniffed.json()["predictions"]] == [p["heads"] for p in typed.json()["predictions"]]


def test_both_heads_and_top_k_from_the_query(client: TestClient, jpeg_bytes: bytes) -> None:
    response = client.post(
        "/v1/predict?heads=imagenet,cifar10&top_k=3",
        content=jpeg_bytes,
        headers={"Content-Type": "image/jpeg"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    _check_prediction(body["predictions"][0], {"imagenet", "cifar10"}, 3)
    assert set(body["weights"]) == {"imagenet", "cifar10"}


def test_top_k_above_a_heads_classes_returns_all_its_classes(client: TestClient, jpeg_bytes: bytes) -> None:
    response = client.post(
        "/v1/predict",
        params={"heads": "cifar10", "top_k": 20},
        content=jpeg_bytes,
        headers={"Content-Type": "image/jpeg"},
    )
    assert response.status_code == 200, response.text
    entries = response.json()["predictions"][0]["heads"]["cifar10"]
    assert sorted(entry["label"] for entry in entries) == sorted(CIFAR10_LABELS)
    assert abs(sum(entry["score"] for entry in entries) - 1.0) < 1e-3


def test_multipart_every_file_part_is_an_image(client: TestClient, jpeg_bytes: bytes, png_bytes: bytes) -> None:
    files = [
        ("first", ("cat.jpg", jpeg_bytes, "image/jpeg")),
        ("whatever", ("coffee.png", png_bytes, "image/png")),
        ("third", ("cat-again.jpg", jpeg_bytes, "application/octet-stream")),
    ]
    response = client.post("/v1/predict", files=files, data={"heads": "cifar10", "top_k": "2"})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["image"] for p in predictions] == [0, 1, 2]
    for prediction in predictions:
        _check_prediction(prediction, {"cifar10"}, 2)
    assert predictions[0]["heads"] == predictions[2]["heads"]  # same picture, same answer


def test_json_base64_instances(client: TestClient, jpeg_bytes: bytes, png_bytes: bytes) -> None:
    payload = {
        "instances": [
            {"b64": base64.b64encode(jpeg_bytes).decode()},
            {"b64": "data:image/png;base64," + base64.b64encode(png_bytes).decode()},
        ],
        "heads": ["imagenet", "cifar10"],
        "top_k": 4,
    }
    response = client.post("/v1/predict", json=payload)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    for prediction in predictions:
        _check_prediction(prediction, {"imagenet", "cifar10"}, 4)


def test_models_says_random_in_plain_words(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["model"]["random_weights"] is True
    assert body["model"]["device"] == "cpu"
    assert body["model"]["runtime"] == "openvino"  # the default on the CPU
    assert body["model"]["precision"] == ("bf16" if "BF16" in body["model"]["capabilities"] else "fp32")
    assert body["model"]["threads"] == 1  # as configured
    for head, classes in (("imagenet", 1000), ("cifar10", 10)):
        described = body["heads"][head]
        assert described["available"] is True and described["classes"] == classes
        assert described["weights"]["kind"] == "random"
        assert "random" in described["weights"]["source"] and "NOT trained" in described["weights"]["source"]
    assert body["heads"]["imagenet"]["labels"][0] == IMAGENET_LABELS[0]
    assert body["batching"] == {"max_batch_size": 8, "max_wait_ms": 20.0, "max_queue": 32}


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    missing = client.get("/v3/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/v1/predict")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_every_kind_of_picture_classifies_over_http(client: TestClient, kind: str) -> None:
    data = PICTURES[kind]()
    content_type = {
        b"\xff\xd8": "image/jpeg",
        b"\x89P": "image/png",
        b"RI": "image/webp",
        b"GI": "image/gif",
        b"BM": "image/bmp",
    }
    response = client.post("/v1/predict?top_k=1", content=data, headers={"Content-Type": content_type[data[:2]]})
    assert response.status_code == 200, response.text
    _check_prediction(response.json()["predictions"][0], {"imagenet"}, 1)
