"""The response cache through HTTP, in process: a repeated image is a hit with the same answer, from any input form."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import RANDOM_SETTINGS
from tests.helpers import encode, photo
from tests.server.metrics_text import parse

CACHED = {**RANDOM_SETTINGS, "workers": 1, "runtime": "torch", "cache_max_entries": 64}
COUNTERS = ("visionserve_cache_hits_total", "visionserve_cache_misses_total", "visionserve_batch_size_count")


@pytest.fixture(scope="module")
def cached() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(**CACHED)), raise_server_exceptions=False) as in_process:  # type: ignore[arg-type]
        yield in_process


def _counters(client: TestClient) -> dict[str, float]:
    found = {name: 0.0 for name in COUNTERS}
    for name, _, value in parse(client.get("/metrics").text):
        if name in found:
            found[name] += value
    return found


def _delta(client: TestClient, before: dict[str, float]) -> tuple[float, float, float]:
    """(hits, misses, batches) since `before`."""
    after = _counters(client)
    return tuple(after[name] - before[name] for name in COUNTERS)  # type: ignore[return-value]


def _post(client: TestClient, image: bytes, query: str = "") -> dict:
    response = client.post(f"/v1/predict{query}", content=image, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_repeated_image_is_a_hit_with_the_same_answer_and_no_batch(cached: TestClient) -> None:
    image = encode(photo("astronaut"), quality=81)  # bytes no other test sends
    before = _counters(cached)
    first = _post(cached, image, "?heads=imagenet,cifar10")
    assert _delta(cached, before) == (0, 1, 1)
    between = _counters(cached)
    again = _post(cached, image, "?heads=imagenet,cifar10")
    assert _delta(cached, between) == (1, 0, 0)  # no forward pass ran
    hit, miss = again["predictions"][0], first["predictions"][0]
    assert miss["cached"] is False and miss["batch_size"] >= 1
    assert hit["cached"] is True and hit["batch_size"] == 0
    assert hit["timings_ms"] == {"preprocess": 0.0, "queue": 0.0, "inference": 0.0}
    assert hit["heads"] == miss["heads"] and again["weights"] == first["weights"]


def test_another_top_k_or_other_heads_are_misses(cached: TestClient) -> None:
    image = encode(photo("rocket"), quality=83)
    _post(cached, image, "?top_k=3")
    before = _counters(cached)
    four = _post(cached, image, "?top_k=4")
    cifar = _post(cached, image, "?top_k=3&heads=cifar10")
    assert _delta(cached, before) == (0, 2, 2)
    assert len(four["predictions"][0]["heads"]["imagenet"]) == 4 and not four["predictions"][0]["cached"]
    assert set(cifar["predictions"][0]["heads"]) == {"cifar10"}


def test_the_same_image_hits_whatever_form_carried_it(cached: TestClient) -> None:
    image = encode(photo("coffee"), quality=84)
    first = _post(cached, image)
    before = _counters(cached)
    as_json = cached.post("/v1/predict", json={"instances": [{"b64": base64.b64encode(image).decode()}]})
    as_part = cached.post("/v1/predict", files=[("photo", ("coffee.jpg", image, "image/jpeg"))])
    assert as_json.status_code == as_part.status_code == 200
    assert _delta(cached, before) == (2, 0, 0)
    for answer in (as_json.json(), as_part.json()):
        assert answer["predictions"][0]["cached"] is True
        assert answer["predictions"][0]["heads"] == first["predictions"][0]["heads"]


def test_a_mixed_request_runs_only_its_misses_and_keeps_the_order(cached: TestClient) -> None:
    seen, new = encode(photo("chelsea"), quality=85), encode(photo("chelsea"), quality=86)
    alone = _post(cached, seen)["predictions"][0]
    before = _counters(cached)
    files = [("a", ("new.jpg", new, "image/jpeg")), ("b", ("seen.jpg", seen, "image/jpeg"))]
    response = cached.post("/v1/predict", files=files)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [(p["image"], p["cached"]) for p in predictions] == [(0, False), (1, True)]
    assert predictions[1]["heads"] == alone["heads"]
    assert predictions[0]["batch_size"] == 1  # the hit did not travel with it
    assert _delta(cached, before) == (1, 1, 1)


def test_a_bad_image_beside_hits_is_still_named(cached: TestClient) -> None:
    seen = encode(photo("coffee"), quality=87)
    _post(cached, seen)
    payload = {"instances": [{"b64": base64.b64encode(seen).decode()}, {"b64": base64.b64encode(b"nonsense").decode()}]}
    response = cached.post("/v1/predict", json=payload)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "not_an_image" and error["message"].startswith("instances[1]: ")


def test_the_openapi_says_an_answer_may_come_from_the_cache(cached: TestClient) -> None:
    schema = cached.get("/openapi.json").json()["components"]["schemas"]["ImagePrediction"]
    assert schema["properties"]["cached"]["type"] == "boolean"
    assert "cached" in schema["required"]
    assert schema["properties"]["batch_size"]["minimum"] == 0
