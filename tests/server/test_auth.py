"""API keys and the metrics port on a real gunicorn (2 workers): keys on and off, rotation, the client commands."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.api_keys import REFRESH_S
from tests.app.cli.command import own_lines, visionserve
from tests.harness.local_server import LocalServer, free_port
from tests.server.metrics_text import total

pytestmark = pytest.mark.service

KEY, SECOND_KEY, NEW_KEY = "server-key-0123456789abcdef", "second-key-0123456789abcdef", "rotated-key-0123456789abcd"
JPEG = {"Content-Type": "image/jpeg"}


class AuthServer(LocalServer):
    """A LocalServer with API keys and a metrics port."""

    keys: Path
    metrics_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def unauthorized(self) -> float:
        return total(self.metrics_url, "visionserve_rejections_total", reason="unauthorized")


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "api-keys"
    path.write_text(f"{KEY}\n{SECOND_KEY}\n")
    return path


@pytest.fixture(scope="module")
def secured(keys_file: Path) -> Iterator[AuthServer]:
    metrics_port = free_port()
    settings = {
        "weights": "random",
        "cifar_head": "random",
        "runtime": "torch",
        "workers": 2,
        "torch_threads": 1,
        "api_keys_file": keys_file,
        "metrics_port": metrics_port,
    }
    server = AuthServer(settings)
    server.keys, server.metrics_port = keys_file, metrics_port
    with server:
        yield server


def _predict(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{url}/v1/predict", data=body, headers={**JPEG, **headers}, timeout=60)


def test_a_bearer_token_and_an_x_api_key_are_both_accepted(secured: AuthServer, jpeg_bytes: bytes) -> None:
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": SECOND_KEY}):
        response = _predict(secured.url, jpeg_bytes, headers)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["heads"]["imagenet"]
    assert requests.get(f"{secured.url}/v1/models", headers={"X-API-Key": KEY}, timeout=10).status_code == 200


def test_a_missing_or_wrong_key_is_a_401_json_counted_in_metrics(secured: AuthServer, jpeg_bytes: bytes) -> None:
    before = secured.unauthorized()
    attempts = ({}, {"X-API-Key": "wrong-key-0123456789abcdef"}, {"Authorization": "Bearer " + KEY[:-1]})
    for headers in attempts:
        response = _predict(secured.url, jpeg_bytes, headers)
        assert response.status_code == 401, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="visionserve"')
        assert response.json()["error"]["code"] == "unauthorized"
    assert secured.unauthorized() == before + len(attempts)


def test_probes_answer_without_a_key(secured: AuthServer) -> None:
    assert requests.get(f"{secured.url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{secured.url}/readyz", timeout=10).json() == {"status": "ready"}
    for path in ("/v2/health/live", "/v2/health/ready"):  # the Open Inference Protocol's probes
        assert requests.get(f"{secured.url}{path}", timeout=10).status_code == 200, path


def test_metrics_answer_on_the_metrics_port_only(secured: AuthServer, jpeg_bytes: bytes) -> None:
    scrape = requests.get(f"{secured.metrics_url}/metrics", timeout=10)  # no key
    assert scrape.status_code == 200 and "visionserve_requests_total" in scrape.text
    on_main = requests.get(f"{secured.url}/metrics", headers={"X-API-Key": KEY}, timeout=10)
    assert on_main.status_code == 404 and on_main.json()["error"]["code"] == "not_found"
    for headers in ({}, {"X-API-Key": KEY}):
        response = _predict(secured.metrics_url, jpeg_bytes, headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert requests.get(f"{secured.metrics_url}/v1/models", timeout=10).status_code == 404


def test_an_empty_keys_file_refuses_to_start(tmp_path: Path) -> None:
    empty = tmp_path / "api-keys"
    empty.write_text("\n")
    code, log = LocalServer({"weights": "random", "api_keys_file": empty}).exit_code_and_log(timeout=60)
    assert code == 2, log
    assert f"api_keys_file {empty} holds no API key" in log


def test_without_keys_every_route_answers_without_one(server: LocalServer) -> None:
    assert requests.get(f"{server.url}/v1/models", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 200  # no metrics port: the main one


def test_predict_sends_the_key_from_the_flag_or_the_variable(
    secured: AuthServer, tmp_path: Path, jpeg_bytes: bytes
) -> None:
    picture = tmp_path / "cat.jpg"
    picture.write_bytes(jpeg_bytes)
    flag = visionserve("predict", "--url", secured.url, "--api-key", SECOND_KEY, str(picture))
    assert flag.returncode == 0, flag.stderr
    assert flag.stdout.startswith(str(picture))
    variable = visionserve(
        "predict", "--url", secured.url, str(picture), env={**os.environ, "VISIONSERVE_API_KEY": SECOND_KEY}
    )
    assert variable.returncode == 0, variable.stderr
    without = visionserve(
        "predict",
        "--url",
        secured.url,
        str(picture),
        env={k: v for k, v in os.environ.items() if k != "VISIONSERVE_API_KEY"},
    )
    assert without.returncode == 1
    (line,) = own_lines(without.stderr)
    assert "401 unauthorized: an API key is required" in line


def test_smoke_test_passes_with_a_key_file_and_the_metrics_port(secured: AuthServer) -> None:
    args = ("smoke-test", "--url", secured.url, "--metrics-url", secured.metrics_url, "--timeout", "30")
    done = visionserve(*args, "--api-key-file", str(secured.keys))
    assert done.returncode == 0, done.stderr
    assert "PASS /v1/models refuses a request without an API key (401)" in done.stdout.splitlines()
    assert done.stdout.splitlines()[-1].startswith("PASS /metrics exports")
    no_key = visionserve(*args)
    assert no_key.returncode == 1 and "401 unauthorized" in no_key.stderr
    missing = visionserve(*args, "--api-key-file", str(secured.keys.with_name("absent")))
    assert missing.returncode == 2 and "--api-key-file" in missing.stderr


# Last: it removes KEY from the running server.
def test_a_key_added_to_the_file_works_and_a_removed_one_stops(secured: AuthServer) -> None:
    def status(key: str) -> int:
        return requests.get(f"{secured.url}/v1/models", headers={"X-API-Key": key}, timeout=10).status_code

    assert status(NEW_KEY) == 401
    secured.keys.write_text(f"{NEW_KEY}\n{SECOND_KEY}\n")  # KEY removed, NEW_KEY added; no restart
    time.sleep(REFRESH_S + 1.5)  # every worker checks the file's stat at most REFRESH_S after its last check
    for _ in range(8):  # requests land on both workers
        assert (status(NEW_KEY), status(SECOND_KEY), status(KEY)) == (200, 200, 401)
    assert "API keys reloaded: 2 key(s)" in secured.log()
