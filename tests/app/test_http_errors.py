"""Bad input gets a JSON 4xx that says what was wrong and what is accepted; the server stays ready."""

from __future__ import annotations

import base64

import pytest
from PIL import Image
from starlette.testclient import TestClient

from tests.helpers import encode, photo

JPEG = {"Content-Type": "image/jpeg"}
OCTETS = {"Content-Type": "application/octet-stream"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _jpeg() -> bytes:
    return encode(photo())


def _svg() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'


# name -> (query, body, headers, status, error code)
CASES = {
    "empty body": ("", b"", JPEG, 400, "empty_body"),
    "not an image": ("", b"just some text, renamed cat.jpg", JPEG, 415, "not_an_image"),
    "truncated image": ("", lambda: _jpeg()[:4000], JPEG, 400, "invalid_image"),
    "tiff renamed as jpeg": ("", lambda: encode(photo(), "TIFF"), JPEG, 415, "unsupported_image_format"),
    "pdf renamed as jpeg": ("", lambda: encode(photo(), "PDF"), JPEG, 415, "unsupported_image_format"),
    "eps renamed as png": (
        "",
        lambda: encode(photo(), "EPS"),
        {"Content-Type": "image/png"},
        415,
        "unsupported_image_format",
    ),
    "svg renamed as png": ("", _svg, {"Content-Type": "image/png"}, 415, "unsupported_image_format"),
    "tiff content type": (
        "",
        lambda: encode(photo(), "TIFF"),
        {"Content-Type": "image/tiff"},
        415,
        "unsupported_image_format",
    ),
    "wrong content type": ("", _jpeg, {"Content-Type": "text/plain"}, 415, "unsupported_content_type"),
    "no content type, not an image": ("", b"heads=imagenet", {"Content-Type": ""}, 415, "unsupported_content_type"),
    "octet-stream, not an image": ("", b"\x00" * 64, OCTETS, 415, "unsupported_content_type"),
    "form-urlencoded, not an image": ("", b"a=1&b=2", FORM, 415, "unsupported_content_type"),
    "octet-stream tiff": ("", lambda: encode(photo(), "TIFF"), OCTETS, 415, "unsupported_image_format"),
    "form-urlencoded truncated jpeg": ("", lambda: _jpeg()[:4000], FORM, 400, "invalid_image"),
    "no content type, empty image": ("", b"", {}, 400, "empty_body"),
    "body over the limit": ("", lambda: b"\xff" * (10 * 1024 * 1024 + 1), JPEG, 413, "payload_too_large"),
    "too many pixels": (
        "",
        lambda: encode(Image.new("1", (10000, 8000)), "PNG"),
        {"Content-Type": "image/png"},
        413,
        "too_many_pixels",
    ),
    "decompression bomb": (
        "",
        lambda: encode(Image.new("1", (30000, 30000)), "PNG"),
        {"Content-Type": "image/png"},
        413,
        "too_many_pixels",
    ),
    "unknown head": ("?heads=imagenet,coco", _jpeg, JPEG, 400, "unknown_head"),
    "empty head": ("?heads=", _jpeg, JPEG, 400, "unknown_head"),
    "top_k zero": ("?top_k=0", _jpeg, JPEG, 400, "invalid_top_k"),
    "top_k too big": ("?top_k=1001", _jpeg, JPEG, 400, "invalid_top_k"),
    "top_k not a number": ("?top_k=five", _jpeg, JPEG, 400, "invalid_top_k"),
    "unknown query parameter": ("?topk=3", _jpeg, JPEG, 400, "unknown_parameter"),
    "malformed json": ("", b'{"instances": [', {"Content-Type": "application/json"}, 400, "malformed_json"),
    "json nested too deep": ("", b"[" * 100_000, {"Content-Type": "application/json"}, 400, "malformed_json"),
    "json not an object": ("", b"[1, 2]", {"Content-Type": "application/json"}, 400, "malformed_json"),
    "json unknown field": (
        "",
        b'{"instances": [], "model": "x"}',
        {"Content-Type": "application/json"},
        400,
        "unknown_field",
    ),
    "json no instances": ("", b'{"instances": []}', {"Content-Type": "application/json"}, 400, "no_images"),
    "malformed base64": (
        "",
        b'{"instances": [{"b64": "@@not base64@@"}]}',
        {"Content-Type": "application/json"},
        400,
        "malformed_base64",
    ),
    "base64 of text": (
        "",
        lambda: b'{"instances": [{"b64": "' + base64.b64encode(b"hello") + b'"}]}',
        {"Content-Type": "application/json"},
        415,
        "not_an_image",
    ),
    "json top_k repeats the query": (
        "?top_k=3",
        lambda: b'{"instances": [{"b64": "' + base64.b64encode(_jpeg()) + b'"}], "top_k": 4}',
        {"Content-Type": "application/json"},
        400,
        "repeated_parameter",
    ),
    "multipart without boundary": ("", b"--x\r\n", {"Content-Type": "multipart/form-data"}, 400, "malformed_multipart"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_a_clear_4xx_and_the_server_stays_ready(client: TestClient, case: str) -> None:
    query, body, headers, status, code = CASES[case]
    data = body() if callable(body) else body
    response = client.post(f"/v1/predict{query}", content=data, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if status in (400, 413, 415):
        assert "accepted" in error, error
    assert client.get("/readyz").status_code == 200


def test_multipart_with_a_non_image_part_names_the_part(client: TestClient) -> None:
    files = [("good", ("cat.jpg", _jpeg(), "image/jpeg")), ("bad", ("notes.txt", b"plain words", "text/plain"))]
    response = client.post("/v1/predict", files=files)
    assert response.status_code == 415
    assert "'bad'" in response.json()["error"]["message"]


def test_multipart_unknown_text_field_is_not_dropped(client: TestClient) -> None:
    files = [("image", ("cat.jpg", _jpeg(), "image/jpeg"))]
    response = client.post("/v1/predict", files=files, data={"topk": "3"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_field"


def test_too_many_images_in_one_request(client: TestClient) -> None:
    tiny = encode(photo("coffee", (32, 32)), "PNG")
    files = [(f"f{i}", (f"{i}.png", tiny, "image/png")) for i in range(33)]
    response = client.post("/v1/predict", files=files)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_many_images"


def test_chunked_body_over_the_limit_is_cut_off(client: TestClient) -> None:
    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(12):
            yield b"\0" * (1024 * 1024)

    response = client.post("/v1/predict", content=chunks(), headers=JPEG)
    assert response.status_code == 413


def test_a_typeless_body_that_is_no_image_says_so(client: TestClient) -> None:
    response = client.post("/v1/predict", content=b"a=1&b=2", headers=FORM)
    message = response.json()["error"]["message"]
    assert message == (
        "Content-Type 'application/x-www-form-urlencoded' is accepted only for a body that is an image, "
        "and this one is not"
    )
