"""The Open Inference Protocol V2 spoken to a real gunicorn by Triton's own client, tritonclient[http] from PyPI.

Every answer is checked against /v1/predict's for the same images: the same top labels, scores within 1e-5.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from app.imaging import preprocess
from app.models.network import MEAN_255, STD_255
from tests.harness.local_server import LocalServer
from tests.helpers import encode, photo

pytestmark = [pytest.mark.service]

MODEL = "resnet50"
HEADS = ("imagenet", "cifar10")


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Iterator[triton.InferenceServerClient]:
    connection = triton.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=120)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [encode(photo("chelsea")), encode(photo("coffee"), "PNG")]


@pytest.fixture(scope="module")
def expected(server: LocalServer, images: list[bytes]) -> list[dict[str, list[dict]]]:
    """/v1/predict's answer for each image: every class of each head, best first."""
    answers = []
    for image, content_type in zip(images, ("image/jpeg", "image/png"), strict=True):
        response = requests.post(
            f"{server.url}/v1/predict",
            params={"heads": ",".join(HEADS), "top_k": 1000},
            data=image,
            headers={"Content-Type": content_type},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        answers.append(response.json()["predictions"][0]["heads"])
    return answers


def _bytes_input(images: list[bytes], binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    elements = images if binary else [base64.b64encode(image) for image in images]  # JSON BYTES: base64 text
    tensor.set_data_from_numpy(np.array(elements, dtype=np.object_), binary_data=binary)
    return tensor


def _assert_probabilities_match(probabilities: np.ndarray, expected: list[dict], head: str) -> None:
    """Rows of FP32 probabilities equal /v1/predict's scores for the same images (which it rounds to 6 places)."""
    assert probabilities.dtype == np.float32 and probabilities.shape[0] == len(expected)
    for row, answer in zip(probabilities, expected, strict=True):
        ranked = answer[head]
        assert int(np.argmax(row)) == ranked[0]["index"]
        scores = np.zeros(len(ranked), dtype=np.float64)
        for entry in ranked:
            scores[entry["index"]] = entry["score"]
        assert np.abs(row - scores).max() < 1e-5


def test_liveness_and_readiness(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, "1")
    assert not client.is_model_ready(MODEL, "2")
    assert not client.is_model_ready("resnet18")


def test_server_and_model_metadata(client: triton.InferenceServerClient) -> None:
    server = client.get_server_metadata()
    assert server["name"] == "visionserve"
    assert {"binary_tensor_data", "classification"} <= set(server["extensions"])
    model = client.get_model_metadata(MODEL)
    assert model == client.get_model_metadata(MODEL, "1")
    assert model["name"] == MODEL and model["versions"] == ["1"] and model["platform"] == "torch"
    assert model["inputs"] == [
        {"name": "image", "datatype": "BYTES", "shape": [-1]},
        {"name": "input", "datatype": "FP32", "shape": [-1, 3, 224, 224]},
    ]
    assert model["outputs"] == [
        {"name": "imagenet", "datatype": "FP32", "shape": [-1, 1000]},
        {"name": "cifar10", "datatype": "FP32", "shape": [-1, 10]},
    ]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_with_encoded_images_equals_v1_predict(
    client: triton.InferenceServerClient, images: list[bytes], expected: list[dict], binary: bool
) -> None:
    outputs = [triton.InferRequestedOutput(head, binary_data=binary) for head in HEADS]
    result = client.infer(MODEL, [_bytes_input(images, binary)], outputs=outputs, request_id=f"id-{binary}")
    assert result.get_response()["id"] == f"id-{binary}"
    assert result.get_response()["model_version"] == "1"
    for head in HEADS:
        _assert_probabilities_match(result.as_numpy(head), expected, head)


def test_infer_without_outputs_returns_every_head_as_binary(
    client: triton.InferenceServerClient, images: list[bytes], expected: list[dict]
) -> None:
    result = client.infer(MODEL, [_bytes_input(images[:1], binary=True)])  # the client asks binary_data_output
    assert [output["name"] for output in result.get_response()["outputs"]] == list(HEADS)
    assert all("binary_data_size" in output["parameters"] for output in result.get_response()["outputs"])
    _assert_probabilities_match(result.as_numpy("cifar10"), expected[:1], "cifar10")


def _normalised(image: bytes) -> np.ndarray:
    """What a client that preprocesses sends: the server's own 224x224 crop, ImageNet mean/std, 3 x 224 x 224."""
    pixels = preprocess(image, 40_000_000).astype(np.float32)
    return ((pixels - np.array(MEAN_255, dtype=np.float32)) / np.array(STD_255, dtype=np.float32)).transpose(2, 0, 1)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_with_a_normalised_fp32_tensor_equals_v1_predict(
    client: triton.InferenceServerClient, images: list[bytes], expected: list[dict], binary: bool
) -> None:
    tensor = np.stack([_normalised(image) for image in images])
    fp32 = triton.InferInput("input", list(tensor.shape), "FP32")
    fp32.set_data_from_numpy(tensor, binary_data=binary)
    result = client.infer(MODEL, [fp32], outputs=[triton.InferRequestedOutput("imagenet", binary_data=binary)])
    assert [output["name"] for output in result.get_response()["outputs"]] == ["imagenet"]
    _assert_probabilities_match(result.as_numpy("imagenet"), expected, "imagenet")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_classification_output_is_score_index_label(
    client: triton.InferenceServerClient, images: list[bytes], expected: list[dict], binary: bool
) -> None:
    outputs = [
        triton.InferRequestedOutput("imagenet", binary_data=binary, class_count=3),
        triton.InferRequestedOutput("cifar10", binary_data=binary, class_count=2),
    ]
    result = client.infer(MODEL, [_bytes_input(images, binary=True)], outputs=outputs)
    for head, count in (("imagenet", 3), ("cifar10", 2)):
        classes = result.as_numpy(head)
        assert classes.shape == (len(images), count)
        for row, answer in zip(classes, expected, strict=True):
            parsed = [element.decode().split(":", 2) if binary else element.split(":", 2) for element in row]
            top = answer[head][:count]
            assert [(int(index), label) for _, index, label in parsed] == [(e["index"], e["label"]) for e in top]
            assert all(abs(float(score) - e["score"]) < 1e-5 for (score, _, _), e in zip(parsed, top, strict=True))


def test_a_bad_image_is_a_400_naming_it(client: triton.InferenceServerClient, images: list[bytes]) -> None:
    with pytest.raises(InferenceServerException) as refused:
        client.infer(MODEL, [_bytes_input([images[0], images[0][:400]], binary=True)])
    assert refused.value.status() == "400"
    assert "input 'image'[1]" in refused.value.message()


def test_an_unknown_model_or_version_is_a_404(client: triton.InferenceServerClient, images: list[bytes]) -> None:
    for name, version in (("resnet18", ""), (MODEL, "7")):
        with pytest.raises(InferenceServerException) as refused:
            client.infer(name, [_bytes_input(images[:1], binary=True)], model_version=version)
        assert refused.value.status() == "404"
        assert name in refused.value.message() or version in refused.value.message()
    with pytest.raises(InferenceServerException) as missing:
        client.get_model_metadata("resnet18")
    assert missing.value.status() == "404"


def test_an_unknown_output_is_a_400_naming_it(client: triton.InferenceServerClient, images: list[bytes]) -> None:
    with pytest.raises(InferenceServerException) as refused:
        client.infer(MODEL, [_bytes_input(images[:1], True)], outputs=[triton.InferRequestedOutput("logits")])
    assert refused.value.status() == "400" and "'logits'" in refused.value.message()


def test_the_timeout_parameter_is_a_deadline_in_microseconds(
    client: triton.InferenceServerClient, images: list[bytes]
) -> None:
    with pytest.raises(InferenceServerException) as late:
        client.infer(MODEL, [_bytes_input(images[:1], True)], timeout=1)  # 1 microsecond: passed before it runs
    assert late.value.status() == "504"
    result = client.infer(MODEL, [_bytes_input(images[:1], True)], timeout=60_000_000)  # a minute: capped, served
    assert result.as_numpy("imagenet").shape == (1, 1000)
