"""Strict parameters and hardened JSON bodies: nothing given twice, instances counted before any base64 is decoded,
numbers out of range and hostile documents answered 4xx, never 5xx."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading
from typing import Any  # a TestClient answer

import pytest
from starlette.testclient import TestClient

from app.frontends import rest_v1_request
from tests.helpers import encode, photo

JSON = {"Content-Type": "application/json"}
JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(photo("chelsea", (64, 48)))


@pytest.fixture(scope="module")
def instance(jpeg: bytes) -> str:
    return json.dumps({"b64": base64.b64encode(jpeg).decode()})


def _error(response: Any) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["error"]


def _assert_repeated(response: Any, name: str) -> None:
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["code"] == "repeated_parameter"
    assert repr(name) in error["message"] and error["accepted"]


@pytest.mark.parametrize(
    ("name", "query"),
    [("top_k", "top_k=1&top_k=5"), ("top_k", "top_k=3&top_k=3"), ("heads", "heads=imagenet&heads=imagenet")],
)
def test_a_query_parameter_given_twice_is_refused_even_with_equal_values(
    client: TestClient, jpeg: bytes, name: str, query: str
) -> None:
    _assert_repeated(client.post(f"/v1/predict?{query}", content=jpeg, headers=JPEG), name)


def test_a_form_field_given_twice_is_refused(client: TestClient, jpeg: bytes) -> None:
    files = [("image", ("cat.jpg", jpeg, "image/jpeg"))]
    _assert_repeated(client.post("/v1/predict", files=files, data={"top_k": ["3", "3"]}), "top_k")


def test_a_parameter_in_the_query_and_the_form_is_refused(client: TestClient, jpeg: bytes) -> None:
    files = [("image", ("cat.jpg", jpeg, "image/jpeg"))]
    response = client.post("/v1/predict?heads=imagenet", files=files, data={"heads": "imagenet"})
    _assert_repeated(response, "heads")
    assert "query" in _error(response)["message"] and "form" in _error(response)["message"]


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("top_k", '{{"instances": [{i}], "top_k": 3, "top_k": 3}}'),
        ("heads", '{{"heads": "imagenet", "instances": [{i}], "heads": "cifar10"}}'),
        ("instances", '{{"instances": [{i}], "instances": [{i}]}}'),
        ("b64", '{{"instances": [{{"b64": "AAAA", "b64": "AAAA"}}]}}'),
    ],
)
def test_a_json_key_given_twice_is_refused(client: TestClient, instance: str, name: str, template: str) -> None:
    body = template.format(i=instance).encode()
    _assert_repeated(client.post("/v1/predict", content=body, headers=JSON), name)


def test_a_parameter_in_the_query_and_the_json_body_is_refused_even_with_equal_values(
    client: TestClient, instance: str
) -> None:
    body = f'{{"instances": [{instance}], "top_k": 3}}'.encode()
    _assert_repeated(client.post("/v1/predict?top_k=3", content=body, headers=JSON), "top_k")


def test_each_parameter_given_once_is_still_served(client: TestClient, instance: str) -> None:
    body = f'{{"instances": [{instance}], "heads": ["imagenet", "cifar10"]}}'.encode()
    response = client.post("/v1/predict?top_k=2", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert [len(ranked) for ranked in response.json()["predictions"][0]["heads"].values()] == [2, 2]


@pytest.mark.parametrize(
    "top_k",
    ["9" * 5000, "-" + "9" * 5000, "12345678901234567890123", "1e999", "-1e999", "[1, " + "7" * 5000 + "]"],
)
def test_a_json_number_out_of_range_is_a_400_naming_the_field(client: TestClient, instance: str, top_k: str) -> None:
    body = f'{{"instances": [{instance}], "top_k": {top_k}}}'.encode()
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["code"] == "malformed_json" and "top_k" in error["message"]
    assert len(response.text) < 2000  # the number is described, not echoed


def test_a_5000_digit_top_k_in_the_query_is_a_400(client: TestClient, jpeg: bytes) -> None:
    response = client.post(f"/v1/predict?top_k={'9' * 5000}", content=jpeg, headers=JPEG)
    assert response.status_code == 400 and _error(response)["code"] == "invalid_top_k"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_that_are_not_json_are_refused(client: TestClient, instance: str, constant: str) -> None:
    body = f'{{"instances": [{instance}], "top_k": {constant}}}'.encode()
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 400 and _error(response)["code"] == "malformed_json"


def test_instances_are_counted_before_any_base64_is_decoded(client: TestClient) -> None:
    """max_images + 1 instances of invalid base64: 413 too_many_images, not 400 malformed_base64 (none decoded)."""
    limit = client.app.state.worker.settings.max_images  # type: ignore[attr-defined]
    body = json.dumps({"instances": [{"b64": "@@ not base64 @@"}] * (limit + 1)}).encode()
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 413 and _error(response)["code"] == "too_many_images"
    within = json.dumps({"instances": [{"b64": "@@ not base64 @@"}] * limit}).encode()
    assert _error(client.post("/v1/predict", content=within, headers=JSON))["code"] == "malformed_base64"


def test_a_body_of_a_million_tiny_instances_is_refused_413(client: TestClient) -> None:
    body = b'{"instances": [' + b",".join([b'{"b64": "AA=="}'] * 600_000) + b"]}"
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 413 and _error(response)["code"] == "too_many_images"


@pytest.mark.parametrize("item", [b"[]", b"0", b'""', b"null", b"{}"])
def test_a_body_of_millions_of_values_is_refused_before_it_is_parsed(client: TestClient, item: bytes) -> None:
    body = b'{"instances": [' + b",".join([item] * 1_000_000) + b"]}"
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert response.status_code == 400 and _error(response)["code"] == "malformed_json"
    assert "commas" in _error(response)["message"]


def test_the_json_body_is_parsed_off_the_event_loop(
    client: TestClient, instance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, bool]] = []
    real = rest_v1_request.parse_json

    def spy(*args: object) -> object:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append((on_loop, threading.current_thread() is threading.main_thread()))
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rest_v1_request, "parse_json", spy)
    response = client.post("/v1/predict", content=f'{{"instances": [{instance}]}}'.encode(), headers=JSON)
    assert response.status_code == 200
    assert seen == [(False, False)]


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [{"b64": "AAAA"}], "\\ud800": 1}',  # a lone surrogate in an unknown key
        b'{"instances": [{"b64": "AAAA"}], "heads": "\\ud800"}',
        b'{"instances": [{"b64": "\\ud800"}]}',
        b'{"instances": [{"b64": "data:,\\udfff"}]}',
        b'{"instances": [{"b64": "AAAA"}], "heads": [null, {"a": []}]}',
        b'{"instances": [{"b64": "AAAA"}], "top_k": true}',
        b'{"instances": [{"b64": "AAAA"}], "top_k": "\\u0000"}',
        b'{"instances": [{"b64": "AAAA"}], "top_k": 1e-400}',
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        b"\xff\xfe{\x00}\x00",  # UTF-16
        b'{"instances": "' + b"\xc3\x28" * 10 + b'"}',  # invalid UTF-8
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"1" * 100_000,
        b"-" + b"1" * 100_000,
        b"0." + b"1" * 1_000_000,
        b'"' + b"\\u0041" * 100_000 + b'"',
    ],
)
def test_hostile_json_is_a_4xx_never_a_5xx(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/predict", content=body, headers=JSON)
    assert 400 <= response.status_code < 500, response.text
    assert _error(response)["code"]


def _random_json(rng: random.Random, depth: int = 0) -> object:
    """A random JSON value that often looks like a predict body: our keys, odd types, huge and tiny numbers."""
    keys = ["instances", "heads", "top_k", "b64", "x", "\ud800", ""]
    leaves = [
        lambda: rng.choice([None, True, False]),
        lambda: rng.choice([0, -1, 5, 2**63, -(2**64), 10**30]),
        lambda: rng.choice([0.5, -0.0, 1e308, 5e-324]),
        lambda: rng.choice(["", "imagenet", "cifar10,imagenet", "AAAA", "data:image/png;base64,AAAA", "\x00", "é"]),
    ]
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(leaves)()
    if rng.random() < 0.5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_random_json_documents_never_get_a_5xx(client: TestClient) -> None:
    rng = random.Random(10)
    codes: set[str] = set()
    for _ in range(300):
        document = _random_json(rng)
        if rng.random() < 0.5:
            document = {"instances": [{"b64": "AAAA"}], rng.choice(["heads", "top_k"]): document}
        body = json.dumps(document, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        response = client.post("/v1/predict", content=body, headers=JSON)
        assert 400 <= response.status_code < 500, (body[:200], response.text)
        codes.add(_error(response)["code"])
    assert len(codes) >= 4, codes  # the documents reached several different checks


MULTIPART_RAW = "multipart/form-data; boundary=x; charset=raw_unicode_escape"  # client text may decode to surrogates


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (MULTIPART_RAW, b'--x\r\nContent-Disposition: form-data; name="\\ud800"\r\n\r\nv\r\n--x--\r\n'),
        (
            MULTIPART_RAW,
            b'--x\r\nContent-Disposition: form-data; name="a"; filename="\\udfff.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\nnot an image\r\n--x--\r\n",
        ),
        ("multipart/form-data; boundary=x; charset=no-such-codec", b"--x\r\nContent-Disposition: form-data; name=a"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\n" + b"A: b\r\n" * 10_000 + b"\r\nv\r\n--x--\r\n"),
        ("multipart/form-data; boundary=" + "x" * 5000, b"--" + b"x" * 5000 + b"\r\n\r\n"),
    ],
)
def test_hostile_multipart_is_a_4xx_never_a_5xx(client: TestClient, content_type: str, body: bytes) -> None:
    response = client.post("/v1/predict", content=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert _error(response)["code"]
