"""What needs the real gunicorn: two worker processes answer alike over real HTTP."""

from __future__ import annotations

import pytest
import requests

from tests.harness.local_server import LocalServer

pytestmark = pytest.mark.service


def test_the_same_image_gets_the_same_answer_from_both_workers(server: LocalServer, jpeg_bytes: bytes) -> None:
    answers = {server.best_imagenet_class(jpeg_bytes) for _ in range(6)}  # new connections: either worker may answer
    assert len(answers) == 1


def test_a_chunked_body_over_the_limit_is_cut_off_over_real_http(server: LocalServer) -> None:
    def chunks():  # no Content-Length: the limit must hold while uvicorn streams the body in
        for _ in range(12):
            yield b"\0" * (1024 * 1024)

    response = requests.post(
        f"{server.url}/v1/predict", data=chunks(), headers={"Content-Type": "image/jpeg"}, timeout=60
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
