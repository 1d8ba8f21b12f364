"""API keys and the metrics port, in process: which requests need a key, what a refusal says, which port serves what.

The app is not started (no lifespan, no model): the middleware answers before any route needs the model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.api_keys import ApiKeysError
from app.frontends.page import PAGE_PATHS
from app.main import create_app
from app.settings import Settings
from tests.server.metrics_text import parse

KEY, OTHER_KEY = "in-process-key-0123456789", "another-key-0123456789ab"
MAIN, METRICS = 8080, 9191  # TestClient puts its URL's port in the ASGI scope's server, as uvicorn puts the socket's
CHALLENGE = 'Bearer realm="visionserve"'
INVALID = f'{CHALLENGE}, error="invalid_token"'


def _client(settings: Settings, port: int = MAIN) -> TestClient:
    return TestClient(create_app(settings), base_url=f"http://testserver:{port}")


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "keys"
    path.write_text(f"{KEY}\n{OTHER_KEY}\n")
    return path


@pytest.fixture(scope="module")
def settings(keys_file: Path) -> Settings:
    return Settings(weights="random", api_keys_file=str(keys_file), port=MAIN, metrics_port=METRICS)


@pytest.fixture(scope="module")
def main_port(settings: Settings) -> TestClient:
    return _client(settings)  # not entered: no lifespan, so no model


def _unauthorized(client: TestClient) -> float:
    scrape = client.get(f"http://testserver:{METRICS}/metrics")  # the same app, through its metrics port
    return sum(
        value
        for name, labels, value in parse(scrape.text)
        if name == "visionserve_rejections_total" and labels["reason"] == "unauthorized"
    )


@pytest.mark.parametrize(
    ("headers", "message", "challenge"),
    [
        ({}, "an API key is required", CHALLENGE),
        ({"X-API-Key": "wrong-key-0123456789abcd"}, "the API key is not accepted", INVALID),
        ({"Authorization": "Bearer wrong-key-0123456789"}, "the API key is not accepted", INVALID),
        ({"Authorization": f"Basic {KEY}"}, "an API key is required", CHALLENGE),  # a key, but not as a Bearer token
        ({"Authorization": "Bearer"}, "an API key is required", CHALLENGE),
    ],
)
def test_no_accepted_key_is_a_401_json_with_a_challenge(
    main_port: TestClient, headers: dict[str, str], message: str, challenge: str
) -> None:
    before = _unauthorized(main_port)
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/predict"), ("GET", "/openapi.json"), ("GET", "/nope")):
        response = main_port.request(method, path, headers=headers, content=b"not read")
        assert response.status_code == 401, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "unauthorized" and error["message"] == message
        assert error["accepted"] == ["Authorization: Bearer <key>", "X-API-Key: <key>"]
        assert response.headers["WWW-Authenticate"] == challenge
    assert _unauthorized(main_port) == before + 4


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {OTHER_KEY}"},
        {"X-API-Key": KEY},
        {"x-api-key": f" {OTHER_KEY} "},
        {"X-API-Key": "wrong-key-0123456789abcd", "Authorization": f"Bearer {KEY}"},
    ],
)
def test_every_key_is_accepted_as_bearer_or_x_api_key(main_port: TestClient, headers: dict[str, str]) -> None:
    response = main_port.get("/v1/models", headers=headers)
    assert response.status_code == 503 and response.json() == {"status": "loading"}  # past auth: the route answered


def test_probes_need_no_key(main_port: TestClient) -> None:
    assert main_port.get("/healthz").status_code == 200
    assert main_port.get("/readyz").json() == {"status": "loading"}
    assert main_port.get("/v2/health/live").status_code == 200  # the Open Inference Protocol's probes too
    assert main_port.get("/v2/health/ready").status_code == 400  # false: still loading


def test_other_protocols_refuse_without_a_key_in_their_own_error_shape(main_port: TestClient) -> None:
    for path in ("/v2", "/v2/models/resnet50/ready", "/v1/models/resnet50"):
        response = main_port.get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "unauthorized" and isinstance(response.json()["error"], str)


def test_the_main_port_answers_metrics_with_404_even_with_a_key(main_port: TestClient) -> None:
    for headers in ({}, {"X-API-Key": KEY}):
        response = main_port.get("/metrics", headers=headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_the_metrics_port_serves_metrics_without_a_key_and_nothing_else(settings: Settings) -> None:
    metrics_port = _client(settings, METRICS)
    scrape = metrics_port.get("/metrics")
    assert scrape.status_code == 200 and "visionserve_rejections_total" in scrape.text
    for method, path in (("POST", "/v1/predict"), ("GET", "/v1/models"), ("GET", "/openapi.json")):
        for headers in ({}, {"X-API-Key": KEY}):
            response = metrics_port.request(method, path, headers=headers)
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", path


def test_without_a_metrics_port_metrics_follows_the_keys(keys_file: Path) -> None:
    client = _client(Settings(weights="random", api_keys_file=str(keys_file)))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200


def test_without_keys_every_route_answers_without_one() -> None:
    client = _client(Settings(weights="random"))
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/models").status_code == 503  # loading: no auth in the way
    assert "security" not in client.get("/openapi.json").json()


def test_an_unusable_keys_file_stops_the_app_from_being_built(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.write_text("\n")
    with pytest.raises(ApiKeysError, match="holds no API key"):
        create_app(Settings(weights="random", api_keys_file=str(empty)))


def test_the_openapi_document_declares_the_schemes_and_the_401(main_port: TestClient) -> None:
    spec = main_port.get("/openapi.json", headers={"X-API-Key": KEY}).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "description": "An API key as a Bearer token."}
    assert schemes["apiKeyHeader"]["in"] == "header" and schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert spec["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    for path, item in spec["paths"].items():
        for operation in item.values():
            if path in {"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"} or path in PAGE_PATHS:
                assert operation["security"] == [] and "401" not in operation["responses"], path
            else:
                unauthorized = operation["responses"]["401"]
                assert "`unauthorized`" in unauthorized["description"] and "WWW-Authenticate" in unauthorized["headers"]
    assert "404" in spec["paths"]["/metrics"]["get"]["responses"]  # on the main port, with a metrics port
