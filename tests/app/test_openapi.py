"""/openapi.json is written from the answer types and the error catalogue, and every answer the app gives fits it."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.testclient import TestClient

from app.errors import CODES, problems_with_status
from app.main import ROUTES
from app.settings import TIMEOUT_HEADER
from tests.app.test_http_errors import CASES

Check = Callable[[object, str, str, str], None]


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict:
    return client.get("/openapi.json").json()


@pytest.fixture(scope="module")
def check(spec: dict) -> Check:
    """Validate an answer against the schema the document gives for its path, method and status."""
    registry = Registry().with_resource("urn:spec", Resource.from_contents(spec, default_specification=DRAFT202012))

    def validate(instance: object, path: str, method: str, status: str) -> None:
        schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        ref = schema.get("$ref", "").replace("#", "urn:spec#") or None
        validator = Draft202012Validator({"$ref": ref} if ref else schema, registry=registry)
        errors = [error.message for error in validator.iter_errors(instance)]
        assert not errors, (path, status, errors)

    return validate


def test_every_route_is_documented(spec: dict) -> None:
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    served = {(route.path, method) for route in ROUTES for method in route.methods - {"HEAD"}}
    assert documented == served
    predict = spec["paths"]["/v1/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/bmp",
        "application/octet-stream",  # and x-www-form-urlencoded or none: known by the bytes, as the text says
        "multipart/form-data",
        "application/json",
    }
    assert "application/x-www-form-urlencoded or none at all" in predict["requestBody"]["description"]
    assert {(p["name"], p["in"]) for p in predict["parameters"]} == {
        ("heads", "query"),
        ("top_k", "query"),
        (TIMEOUT_HEADER, "header"),
    }


def test_every_answer_documents_its_request_id(spec: dict, client: TestClient) -> None:
    assert "X-Request-ID" in spec["info"]["description"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                assert "X-Request-ID" in response["headers"], (path, method, status)
    answer = client.get("/v1/models", headers={"X-Request-ID": "trace-42"})
    assert answer.headers["X-Request-ID"] == "trace-42"


def test_error_codes_and_responses_come_from_the_catalogue(spec: dict) -> None:
    assert spec["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"] == sorted(CODES)
    predict = spec["paths"]["/v1/predict"]["post"]["responses"]
    for status in ("400", "408", "413", "415", "431", "500", "503"):
        for problem in problems_with_status(int(status)):
            assert f"`{problem.code}`" in predict[status]["description"]
    assert "Retry-After" in predict["503"]["headers"]


def test_success_answers_fit_their_schemas(client: TestClient, check: Check, jpeg_bytes: bytes) -> None:
    predicted = client.post(
        "/v1/predict?heads=imagenet,cifar10", content=jpeg_bytes, headers={"Content-Type": "image/jpeg"}
    )
    check(predicted.json(), "/v1/predict", "post", "200")
    check(client.get("/v1/models").json(), "/v1/models", "get", "200")
    check(client.get("/readyz").json(), "/readyz", "get", "200")
    check(client.get("/healthz").json(), "/healthz", "get", "200")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_refusal_fits_the_error_schema_of_its_status(client: TestClient, check: Check, case: str) -> None:
    query, body, headers, status, _ = CASES[case]
    response = client.post(f"/v1/predict{query}", content=body() if callable(body) else body, headers=headers)
    assert response.status_code == status
    check(response.json(), "/v1/predict", "post", str(status))


def test_the_json_request_schema_accepts_what_the_app_accepts(spec: dict, client: TestClient, png_bytes: bytes) -> None:
    request = {"instances": [{"b64": base64.b64encode(png_bytes).decode()}], "heads": ["cifar10"], "top_k": 2}
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    validator = Draft202012Validator(
        {"$ref": "urn:spec#/components/schemas/JsonPredictRequest"},
        registry=Registry().with_resource("urn:spec", resource),
    )
    assert not list(validator.iter_errors(request))
    for refused in ({**request, "model": "x"}, {**request, "top_k": 0}, {**request, "instances": []}):
        assert list(validator.iter_errors(refused)), refused  # the app refuses these too (test_http_errors)
    assert client.post("/v1/predict", json=request).status_code == 200


def test_protocol_answers_fit_their_schemas(client: TestClient, check: Check, jpeg_bytes: bytes) -> None:
    image = base64.b64encode(jpeg_bytes).decode()
    infer = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [image]}], "id": "x"}
    model, versioned = "/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"
    answers = [
        (client.get("/v2"), "/v2", "get"),
        (client.get("/v2/models/resnet50"), model, "get"),
        (client.get("/v2/models/resnet50/versions/1"), versioned, "get"),
        (client.get("/v2/models/resnet18"), model, "get"),
        (client.post("/v2/models/resnet50/infer", json=infer), f"{model}/infer", "post"),
        (client.post("/v2/models/resnet50/versions/1/infer", json={"inputs": []}), f"{versioned}/infer", "post"),
        (client.get("/v1/models/resnet50"), "/v1/models/{model_name}", "get"),
        (
            client.post("/v1/models/resnet50:predict", json={"inputs": [{"b64": image}]}),
            "/v1/models/{model_name}:predict",
            "post",
        ),
        (client.post("/v1/models/resnet50:predict", json={"inputs": []}), "/v1/models/{model_name}:predict", "post"),
    ]
    assert sorted({response.status_code for response, _, _ in answers}) == [200, 400, 404]
    for response, path, method in answers:
        check(response.json(), path, method, str(response.status_code))


def test_the_infer_request_schema_refuses_what_the_app_refuses(
    spec: dict, client: TestClient, png_bytes: bytes
) -> None:
    tensor = {"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(png_bytes).decode()]}
    request = {"inputs": [tensor], "outputs": [{"name": "cifar10", "parameters": {"classification": 2}}]}
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    validator = Draft202012Validator(
        {"$ref": "urn:spec#/components/schemas/InferRequest"}, registry=Registry().with_resource("urn:spec", resource)
    )
    assert not list(validator.iter_errors(request))
    assert client.post("/v2/models/resnet50/infer", json=request).status_code == 200
    for refused in (
        {**request, "model": "x"},
        {**request, "inputs": []},
        {**request, "id": 3},
        {"inputs": [{**tensor, "shape": [-1]}]},
        {"inputs": [{**tensor, "parameters": {"binary_data_size": None}}]},
    ):
        assert list(validator.iter_errors(refused)), refused
        assert client.post("/v2/models/resnet50/infer", json=refused).status_code == 400, refused
