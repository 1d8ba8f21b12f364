"""X-Request-ID on every answer and in every error body; one JSON access line per request, with its fields."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.frontends.access_log import ACCESS_LOGGER, SERVICE_LOGGER, access_logger
from app.main import create_app
from app.pipeline import ClassifyRequest
from app.settings import Settings
from tests.helpers import encode, photo

JPEG = {"Content-Type": "image/jpeg"}
GENERATED = re.compile(r"[0-9a-f]{32}")
FIELDS = {"time", "request_id", "method", "route", "status", "images", "latency_ms", "reason", "code", "client"}


class Lines(logging.Handler):
    """Collects the access log's messages."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def by_id(self, request_id: str) -> list[dict]:
        return [entry for entry in map(json.loads, self.lines) if entry["request_id"] == request_id]


@pytest.fixture
def access() -> Iterator[Lines]:
    lines = Lines()
    logger = access_logger()
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(photo("chelsea", (64, 48)))


@pytest.mark.parametrize("given", ["abc-123", "a" * 128, "trace:01.02_x", "0"])
def test_a_sane_request_id_is_echoed(client: TestClient, given: str) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given


@pytest.mark.parametrize("given", [None, "", "a" * 129, "has space", "semi;colon", 'quote"d', "new\\nline", "é"])
def test_a_missing_or_insane_request_id_is_replaced(client: TestClient, given: str | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given.encode("latin-1")}
    answered = client.get("/v1/models", headers=headers).headers.get_list("x-request-id")
    assert len(answered) == 1 and GENERATED.fullmatch(answered[0]) and answered[0] != given


def test_every_request_gets_its_own_id(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [("POST", "/v1/predict", b"", 400), ("GET", "/nowhere", None, 404), ("GET", "/v1/predict", None, 405)],
)
def test_error_bodies_carry_the_request_id_of_the_header(
    client: TestClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = client.request(method, path, content=body, headers={**JPEG, "X-Request-ID": "err-1"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "err-1" and response.json()["error"]["request_id"] == "err-1"
    generated = client.request(method, path, content=body, headers=JPEG)
    assert generated.json()["error"]["request_id"] == generated.headers["x-request-id"]


def test_a_500_names_the_request_id_in_its_answer_header_and_log(
    client: TestClient, jpeg: bytes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, access: Lines
) -> None:
    def explode(request: ClassifyRequest) -> None:
        raise RuntimeError("a bug with a secret path /srv/weights.pth")

    monkeypatch.setattr(client.app.state.worker.pipeline, "classify", explode)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="visionserve"):
        response = client.post("/v1/predict", content=jpeg, headers={**JPEG, "X-Request-ID": "boom-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "boom-1"
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["request_id"] == "boom-1"
    assert "/srv" not in response.text  # a generic message: the exception text stays in the log
    assert any("boom-1" in record.getMessage() for record in caplog.records if record.name == "visionserve")
    [line] = access.by_id("boom-1")
    assert line["status"] == 500 and line["reason"] == "internal_error" and line["images"] == 1


def test_one_access_line_per_request_with_its_fields(client: TestClient, jpeg: bytes, access: Lines) -> None:
    ok = client.post("/v1/predict?top_k=2", content=jpeg, headers={**JPEG, "X-Request-ID": "ok-1"})
    bad = client.post("/v1/predict?top_k=0", content=jpeg, headers={**JPEG, "X-Request-ID": "bad-1"})
    lost = client.get("/no/such/path/123", headers={"X-Request-ID": "lost-1"})
    assert (ok.status_code, bad.status_code, lost.status_code) == (200, 400, 404)
    [good] = access.by_id("ok-1")
    assert set(good) == FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", good["time"])
    assert good["method"] == "POST" and good["route"] == "/v1/predict" and good["status"] == 200
    assert good["images"] == 1 and good["reason"] is None and good["code"] is None
    assert good["latency_ms"] > 0 and good["client"] == "testclient:50000"
    [refused] = access.by_id("bad-1")
    assert (refused["status"], refused["reason"], refused["code"]) == (400, "invalid_request", "invalid_top_k")
    [unmatched] = access.by_id("lost-1")
    assert unmatched["route"] == "<unmatched>" and unmatched["status"] == 404 and unmatched["reason"] == "not_found"


def test_successful_probes_are_not_logged_but_failures_are(client: TestClient, access: Lines) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"):
        client.get(path, headers={"X-Request-ID": "probe-1"})
    client.post("/healthz", headers={"X-Request-ID": "probe-2"})
    assert access.by_id("probe-1") == []
    assert [line["status"] for line in access.by_id("probe-2")] == [405]


@pytest.mark.parametrize(("setting", "lines"), [("json", 1), ("off", 0)])
def test_the_access_log_setting(setting: str, lines: int, access: Lines) -> None:
    unstarted = TestClient(create_app(Settings(weights="random", access_log=setting)))  # no lifespan: no model
    response = unstarted.get("/nothing", headers={"X-Request-ID": f"setting-{setting}"})
    assert response.status_code == 404 and response.headers["x-request-id"] == f"setting-{setting}"
    assert len(access.by_id(f"setting-{setting}")) == lines


def test_access_lines_are_pure_json_where_the_service_log_goes() -> None:
    """Under gunicorn the service logger has the error log's handler (with its "[time] [pid]" format):
    the access line goes to the same stream, without that prefix."""
    stream = io.StringIO()
    gunicorn_like = logging.StreamHandler(stream)
    gunicorn_like.setFormatter(logging.Formatter("%(asctime)s [%(process)d] [%(levelname)s] %(message)s"))
    service = logging.getLogger(SERVICE_LOGGER)
    service.addHandler(gunicorn_like)
    try:
        logging.getLogger(ACCESS_LOGGER).info('{"request_id": "raw-1"}')
        service.warning("a service line")
    finally:
        service.removeHandler(gunicorn_like)
    access_line, service_line = stream.getvalue().splitlines()
    assert json.loads(access_line) == {"request_id": "raw-1"}
    assert service_line.endswith("[WARNING] a service line")
