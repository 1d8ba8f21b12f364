"""OIP V2 and KServe V1 over HTTP in process: their error shape, overload, and health that holds /healthz's and
/readyz's truth."""

from __future__ import annotations

import base64

import pytest
from starlette.testclient import TestClient

from app.frontends.errors import speaks_plain_errors
from app.main import ROUTES, create_app
from app.settings import Settings

INFER = "/v2/models/resnet50/infer"
PREDICT = "/v1/models/resnet50:predict"


def _infer_body(image: bytes) -> dict:
    return {
        "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(image).decode()]}]
    }


def _kserve_body(image: bytes) -> dict:
    return {"instances": [{"b64": base64.b64encode(image).decode()}]}


def test_every_protocol_route_speaks_plain_errors_and_ours_do_not() -> None:
    theirs = {route.path for route in ROUTES if route.path.startswith("/v2") or route.path.startswith("/v1/models/")}
    assert len(theirs) == 11 and all(speaks_plain_errors(path) for path in theirs)
    assert not any(speaks_plain_errors(route.path) for route in ROUTES if route.path not in theirs)
    assert not speaks_plain_errors("/v20") and not speaks_plain_errors("/v1/models")


def test_a_refusal_is_the_protocols_error_with_our_code_and_request_id(client: TestClient, jpeg_bytes: bytes) -> None:
    response = client.post(INFER, json=_infer_body(jpeg_bytes[:400]), headers={"X-Request-ID": "oip-1"})
    assert response.status_code == 400
    assert response.json() == {"error": response.json()["error"], "code": "invalid_image", "request_id": "oip-1"}
    assert response.headers["X-Request-ID"] == "oip-1"
    missing = client.get("/v2/repository/index")  # an extension we do not speak: routed nowhere, still their shape
    assert missing.status_code == 404 and isinstance(missing.json()["error"], str)
    assert client.get(INFER).status_code == 405


@pytest.mark.parametrize(("path", "body"), [(INFER, _infer_body), (PREDICT, _kserve_body)])
def test_a_full_queue_is_503_with_retry_after_before_the_body_is_parsed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes, path: str, body: object
) -> None:
    monkeypatch.setattr(client.app.state.worker.pipeline.batcher, "max_queue", 0)  # type: ignore[attr-defined]
    response = client.post(path, json=body(jpeg_bytes))  # type: ignore[operator]
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["code"] == "queue_full" and "capacity" in response.json()["error"]
    monkeypatch.undo()
    assert client.post(path, json=body(jpeg_bytes)).status_code == 200  # type: ignore[operator]


def test_the_timeout_header_is_honoured_too(client: TestClient, jpeg_bytes: bytes) -> None:
    response = client.post(INFER, json=_infer_body(jpeg_bytes), headers={"X-Request-Timeout-Ms": "soon"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_timeout"


def test_compressed_bodies_and_query_parameters_are_refused_not_misread(client: TestClient) -> None:
    zipped = client.post(INFER, content=b"\x1f\x8b...", headers={"Content-Encoding": "gzip"})
    assert zipped.status_code == 415 and "Content-Encoding" in zipped.json()["error"]
    queried = client.post(f"{INFER}?top_k=3", json={"inputs": []})
    assert queried.status_code == 400 and queried.json()["code"] == "unknown_parameter"
    kserve = client.post(PREDICT, content=b"x", headers={"Content-Type": "text/plain"})
    assert kserve.status_code == 415


def test_a_loading_worker_is_live_not_ready_and_refuses_with_503() -> None:
    unstarted = TestClient(create_app(Settings(weights="random", retry_after_s=2)))  # no lifespan: never loads
    assert unstarted.get("/v2/health/live").status_code == 200
    ready = unstarted.get("/v2/health/ready")
    assert ready.status_code == 400 and ready.content == b""  # false, as the protocol says: a 4xx, no body
    assert unstarted.get("/v2/models/resnet50/ready").status_code == 400
    assert unstarted.get("/v1/models/resnet50").json() == {"name": "resnet50", "ready": False}
    for response in (unstarted.get("/v2/models/resnet50"), unstarted.post(INFER, json={"inputs": []})):
        assert response.status_code == 503 and response.headers["Retry-After"] == "2"
        assert response.json()["code"] == "not_ready"


@pytest.mark.parametrize("status", ["stalled", "failed", "draining"])
def test_v2_health_holds_the_same_truth_as_healthz_and_readyz(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    worker = client.app.state.worker  # type: ignore[attr-defined]
    assert client.get("/v2/health/live").status_code == client.get("/v2/health/ready").status_code == 200
    monkeypatch.setattr(type(worker), "_health", lambda self: (status, "a test says so"))
    live, ready = client.get("/healthz").status_code == 200, client.get("/readyz").status_code == 200
    assert (client.get("/v2/health/live").status_code == 200) == live
    assert (client.get("/v2/health/ready").status_code == 200) == ready is False
    assert client.get("/v2/models/resnet50/ready").status_code == 400
    assert client.get("/v1/models/resnet50").status_code == 503
