"""One error catalogue: every declared problem is raised, every raised one declared, each answers as declared."""

from __future__ import annotations

import ast
import asyncio
import base64
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from app.batching import Batcher
from app.errors import CATALOGUE, CODES, REASONS, ApiError, Problem, Problems
from app.main import create_app
from app.metrics import Metrics
from app.pipeline import ClassifyRequest, ImageInput, Pipeline
from app.settings import Settings
from tests.app.test_http_errors import CASES
from tests.harness.guarded_server import Answer, guarded_server, read_answer
from tests.helpers import ROOT, encode, photo
from tests.server.metrics_text import parse

APP = ROOT / "app"
JPEG = {"Content-Type": "image/jpeg"}


def _problems_named_in(path: Path) -> set[str]:
    """Names used as `Problems.NAME` in one module."""
    tree = ast.parse(path.read_text())
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Problems"
    }


def test_every_declared_problem_is_used_by_the_app_and_every_used_one_is_declared() -> None:
    declared = {name for name, value in vars(Problems).items() if isinstance(value, Problem)}
    used = set().union(*(_problems_named_in(path) for path in APP.rglob("*.py") if path != APP / "errors.py"))
    assert used - declared == set(), "raised but not declared"
    assert declared - used == set(), "declared but never raised"


def test_api_errors_are_made_only_from_the_catalogue() -> None:
    """No module builds an ApiError from a bare status or code string: the first argument is always Problems.X."""
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ApiError":
                first = node.args[0]
                assert isinstance(first, ast.Attribute) and getattr(first.value, "id", None) == "Problems", (
                    f"{path.relative_to(ROOT)}:{node.lineno}"
                )


def test_codes_are_unique_and_reasons_are_few() -> None:
    assert len(set(CODES)) == len(CODES)
    assert len(REASONS) < len(CODES)  # reasons group codes: bounded metric labels


# How each problem is provoked: an HTTP request against the app in process, or the pipeline directly.
def _http(method: str, path: str, **kwargs: Any) -> Callable[[TestClient], Any]:
    return lambda client: client.request(method, path, **kwargs)


def _jpeg() -> bytes:
    return encode(photo("chelsea", (64, 48)))


def _blank_png_b64(width: int, height: int) -> str:
    """A big but tiny-to-send PNG: its header declares width x height pixels."""
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


HTTP_TRIGGERS: dict[str, Callable[[TestClient], Any]] = {
    code: _http("POST", f"/v1/predict{query}", content=body() if callable(body) else body, headers=headers)
    for query, body, headers, _, code in CASES.values()
}
HTTP_TRIGGERS |= {
    "empty_image": _http("POST", "/v1/predict", json={"instances": [{"b64": ""}]}),
    "not_found": _http("GET", "/v2/nothing"),
    "method_not_allowed": _http("GET", "/v1/predict"),
    "too_many_images": _http(
        "POST", "/v1/predict", json={"instances": [{"b64": base64.b64encode(b"x").decode()}] * 33}
    ),
    "invalid_timeout": _http("POST", "/v1/predict", content=b"x", headers={**JPEG, "X-Request-Timeout-Ms": "soon"}),
    "deadline_exceeded": lambda client: client.post(
        "/v1/predict", content=_jpeg(), headers={**JPEG, "X-Request-Timeout-Ms": "1"}
    ),
    "pixel_budget_exceeded": lambda client: client.post(
        "/v1/predict",
        json={"instances": [{"b64": _blank_png_b64(6000, 6000)}] * 3},  # 108 of 100 megapixels
    ),
    "model_not_found": _http("GET", "/v2/models/resnet18"),
    "invalid_tensor": _http(
        "POST", "/v2/models/resnet50/infer", json={"inputs": [{"name": "pixels", "shape": [1], "datatype": "FP32"}]}
    ),
}


def _code(body: dict) -> str:
    """The code of a refusal in either shape: ours, or OIP V2's and KServe V1's {"error": "<message>", "code"}."""
    return body["error"]["code"] if isinstance(body["error"], dict) else body["code"]


class ImagenetOnly:
    """A stand-in model with only the imagenet head."""

    def __init__(self) -> None:
        self.heads = {"imagenet": None}

    def classify(self, samples: list) -> list:
        return [{} for _ in samples]


async def _pipeline_outcome(problem: Problem) -> ApiError:
    """Drive a real Pipeline and Batcher into the state that refuses with `problem`."""
    settings = Settings(max_queue=2, max_images=1, max_wait_ms=0)
    model = ImagenetOnly()
    draining = problem is Problems.DRAINING
    batcher = Batcher(
        model.classify, executor=ThreadPoolExecutor(1), max_batch_size=1, max_wait_ms=0, max_queue=1, metrics=Metrics()
    )
    pipeline = Pipeline(
        settings,
        classifier=model,
        batcher=batcher,
        decode_pool=ThreadPoolExecutor(1),  # type: ignore[arg-type]
        metrics=Metrics(),
        draining=lambda: draining,
    )
    batcher.start()
    one = ClassifyRequest([ImageInput("body", _jpeg())], frozenset({"imagenet"}), 1)
    try:
        if problem is Problems.HEAD_UNAVAILABLE:
            await pipeline.classify(ClassifyRequest(one.images, frozenset({"cifar10"}), 1))
        elif problem is Problems.QUEUE_FULL:
            async with batcher.admit(1):  # another request holds the only place in the queue
                await pipeline.classify(one)
        else:  # DRAINING, NOT_READY: the batcher stopped, during shutdown or after a failure
            await batcher.stop()
            await pipeline.classify(one)
    except ApiError as error:
        return error
    finally:
        await batcher.stop()
    raise AssertionError(f"{problem.code} was not raised")


PIPELINE_TRIGGERS = {
    p.code for p in (Problems.HEAD_UNAVAILABLE, Problems.QUEUE_FULL, Problems.DRAINING, Problems.NOT_READY)
}


# Refused by the connection protocol (app/connections.py) before the app sees a request: what the client sends.
PROTOCOL_SETTINGS = Settings(header_timeout_s=0.5, max_connections=1, max_header_bytes=1024)
PROTOCOL_TRIGGERS = {
    "malformed_request": b"NOT HTTP\r\n\r\n",
    "request_timeout": b"GET /healthz HTTP/1.1\r\n",  # and then nothing
    "headers_too_large": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2048 + b"\r\n\r\n",
    "too_many_connections": b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n",  # while another connection is open
}


async def _protocol_outcome(problem: Problem, app: Any) -> Answer:
    """Serve the in-process app with the guarded protocol, counted in its worker's metrics; send the trigger."""
    async with guarded_server(app, PROTOCOL_SETTINGS, app.state.worker.metrics) as served:
        connections = [await asyncio.open_connection(served.host, served.port)]
        if problem is Problems.TOO_MANY_CONNECTIONS:
            while len(served.state.connections) < 1:  # the first one holds the only place
                await asyncio.sleep(0.01)
            connections.append(await asyncio.open_connection(served.host, served.port))
        reader, writer = connections[-1]
        writer.write(PROTOCOL_TRIGGERS[problem.code])
        try:
            return await read_answer(reader)
        finally:
            for _, open_writer in connections:
                open_writer.close()


def _rejections(client: TestClient, reason: str) -> float:
    return sum(
        value
        for name, labels, value in parse(client.get("/metrics").text)
        if name == "visionserve_rejections_total" and labels.get("reason") == reason
    )


@pytest.mark.parametrize("problem", CATALOGUE, ids=lambda problem: problem.code)
def test_every_problem_answers_with_its_declared_status_code_and_metric(
    client: TestClient, problem: Problem, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if problem.code in PIPELINE_TRIGGERS:
        error = asyncio.run(_pipeline_outcome(problem))
        assert error.problem is problem and error.message
        if problem.status == 503:
            assert error.headers["Retry-After"].isdigit()
        return
    if problem.code in PROTOCOL_TRIGGERS:
        before = _rejections(client, problem.reason)
        answer = asyncio.run(asyncio.wait_for(_protocol_outcome(problem, client.app), 60))
        assert answer.status == problem.status, answer.body
        assert answer.json()["error"]["code"] == problem.code and answer.headers["connection"] == "close"
        if problem.status == 503:
            assert answer.headers["retry-after"].isdigit()
        assert _rejections(client, problem.reason) == before + 1
        return
    if problem is Problems.UNAUTHORIZED:  # API keys are off in the shared app: one that requires them
        keys = tmp_path / "keys"
        keys.write_text("catalogue-key-0123456789\n")
        client = TestClient(create_app(Settings(weights="random", api_keys_file=str(keys))))
        client.headers["X-API-Key"] = "catalogue-key-0123456789"  # for _rejections' scrape
        trigger = _http("GET", "/v1/models", headers={"X-API-Key": "not-the-key-0123456789"})
    elif problem is Problems.INTERNAL_ERROR:

        def explode(request: ClassifyRequest) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(client.app.state.worker.pipeline, "classify", explode)  # type: ignore[attr-defined]
        trigger = _http("POST", "/v1/predict", content=_jpeg(), headers=JPEG)
    else:
        assert problem.code in HTTP_TRIGGERS, f"no test provokes {problem.code}"
        trigger = HTTP_TRIGGERS[problem.code]
    before = _rejections(client, problem.reason)
    response = trigger(client)
    assert response.status_code == problem.status, response.text
    assert _code(response.json()) == problem.code
    if problem is Problems.INTERNAL_ERROR:  # the id the log names too
        assert len(response.json()["error"]["request_id"]) == 32
        assert client.get("/readyz").status_code == 200
    assert _rejections(client, problem.reason) == before + 1


def test_a_worker_still_loading_answers_not_ready_with_retry_after() -> None:
    app = create_app(Settings(weights="random", retry_after_s=3))
    unstarted = TestClient(app)  # no lifespan: the model never loads
    response = unstarted.post("/v1/predict", content=_jpeg(), headers=JPEG)
    assert response.status_code == 503 and response.headers["Retry-After"] == "3"
    assert response.json()["error"]["code"] == "not_ready"
    assert unstarted.get("/readyz").json() == {"status": "loading"}
