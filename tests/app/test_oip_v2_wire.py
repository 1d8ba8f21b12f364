"""The Open Inference Protocol V2 wire format in process: every edge of the request is refused with a 4xx that names
the input, output or parameter at fault, and answers are laid out as the binary and classification extensions say."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from app.answers import LabelScore
from app.errors import ApiError
from app.frontends.oip_v2_wire import InferCall, OutputChoice, encode_infer, parse_infer
from app.models.network import MEAN_255, STD_255, pixels_from_normalised
from app.pipeline import ClassifyRequest, ClassifyResult, ImageInput, ImageResult, TensorInput

HEADS = {"imagenet": 1000, "cifar10": 10}
MAX_IMAGES = 4
VALUES = 3 * 224 * 224


def _image(data: list | None = None, **fields: object) -> dict:
    return {"name": "image", "shape": [1], "datatype": "BYTES", "data": data or ["aGVsbG8="], **fields}


def _parse(document: dict, binary: bytes = b"", header: str | None = None) -> InferCall:
    text = json.dumps(document).encode()
    if binary and header is None:
        header = str(len(text))
    return parse_infer(text + binary, header, HEADS, MAX_IMAGES)


def _refused(document: dict, binary: bytes = b"", header: str | None = None) -> ApiError:
    with pytest.raises(ApiError) as refused:
        _parse(document, binary, header)
    assert 400 <= refused.value.status < 500
    return refused.value


def _blob(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def test_json_bytes_are_base64_and_every_head_is_the_default_output() -> None:
    call = _parse({"id": "7", "inputs": [_image(["aGVsbG8=", "d29ybGQ="], shape=[2])]})
    assert [image.data for image in call.request.images] == [b"hello", b"world"]  # type: ignore[union-attr]
    assert call.id == "7" and call.timeout_s is None
    assert call.outputs == [OutputChoice("imagenet", 0, False), OutputChoice("cifar10", 0, False)]
    assert call.request.heads == frozenset(HEADS) and call.request.scores


def test_binary_bytes_and_outputs_as_the_extension_says() -> None:
    document = {
        "inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 15}}],
        "parameters": {"binary_data_output": True, "timeout": 2_500_000},
        "outputs": [{"name": "cifar10", "parameters": {"classification": 3}}, {"name": "imagenet"}],
    }
    call = _parse(document, _blob(b"abc", b"defg"))
    assert [image.data for image in call.request.images] == [b"abc", b"defg"]  # type: ignore[union-attr]
    assert call.timeout_s == 2.5  # microseconds, as Triton's schedule policy has it
    assert call.outputs == [OutputChoice("cifar10", 3, True), OutputChoice("imagenet", 0, True)]
    assert call.request.top_k == 3 and call.request.scores  # imagenet as probabilities, cifar10 classified


def test_fp32_tensors_flat_nested_and_binary() -> None:
    tensor = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    fp32 = {"name": "input", "shape": [2, 3, 224, 224], "datatype": "FP32"}
    flat = _parse({"inputs": [{**fp32, "data": tensor.reshape(-1).tolist()}]})
    nested = _parse({"inputs": [{**fp32, "data": tensor.tolist()}]})
    binary = _parse({"inputs": [{**fp32, "parameters": {"binary_data_size": tensor.nbytes}}]}, tensor.tobytes())
    for call in (flat, nested, binary):
        assert all(isinstance(one, TensorInput) for one in call.request.images)
        np.testing.assert_array_equal(np.stack([one.tensor for one in call.request.images]), tensor)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"inputs": [_image(name="pixels")]}, "'pixels'"),
        ({"inputs": [_image(), _image()]}, "2 inputs"),
        ({"inputs": [_image(datatype="UINT8")]}, "'UINT8'"),
        ({"inputs": [_image(shape=[1, 1])]}, "[1, 1]"),
        ({"inputs": [_image(shape=[0])]}, "N >= 1"),
        ({"inputs": [_image(shape=[2])]}, "holds 1 elements"),
        ({"inputs": [_image(data=[1])]}, "base64 strings"),
        (
            {"inputs": [{"name": "input", "shape": [1, 3, 224, 223], "datatype": "FP32", "data": [0]}]},
            "[N, 3, 224, 224]",
        ),
        ({"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": [0.5]}]}, "numbers"),
        ({"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": ["1"]}]}, "numbers"),
        ({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES"}]}, "give its `data`"),
        ({"inputs": [_image()], "outputs": []}, "`outputs` is empty"),
        ({"inputs": [_image()], "outputs": [{"name": "logits"}]}, "'logits'"),
        ({"inputs": [_image()], "outputs": [{"name": "imagenet"}, {"name": "imagenet"}]}, "twice"),
        ({"inputs": [_image()], "outputs": [{"name": "imagenet", "parameters": {"binary_data": 1}}]}, "true or false"),
        ({"inputs": [_image()], "parameters": {"binary_data_output": "yes"}}, "binary_data_output"),
    ],
)
def test_an_invalid_tensor_is_named(document: dict, named: str) -> None:
    error = _refused(document)
    assert error.code == "invalid_tensor" and error.status == 400
    assert named in error.message, error.message


@pytest.mark.parametrize(
    ("document", "code", "named"),
    [
        ({"inputs": [_image()], "parameters": {"priority": 1}}, "unknown_parameter", "'priority'"),
        ({"inputs": [_image(parameters={"shared_memory_region": "x"})]}, "unknown_parameter", "input 'image'"),
        ({"inputs": [_image()], "outputs": [{"name": "imagenet", "parameters": {"k": 1}}]}, "unknown_parameter", "'k'"),
        ({"inputs": [_image()], "parameters": {"timeout": 0}}, "invalid_timeout", "microseconds"),
        ({"inputs": [_image()], "parameters": {"timeout": 1.5}}, "invalid_timeout", "microseconds"),
        (
            {"inputs": [_image()], "outputs": [{"name": "cifar10", "parameters": {"classification": 11}}]},
            "invalid_top_k",
            "1 to 10",
        ),
        (
            {"inputs": [_image()], "outputs": [{"name": "imagenet", "parameters": {"classification": True}}]},
            "invalid_top_k",
            "classification",
        ),
        ({"inputs": [_image(["%%%"])]}, "malformed_base64", "input 'image'[0]"),
        ({"inputs": [_image(["aGk="] * 5, shape=[5])]}, "too_many_images", "at most 4"),
        ({"inputs": [_image()], "model_name": "resnet50"}, "malformed_json", "model_name"),
        ({"inputs": [_image(shape=[-1])]}, "malformed_json", "shape"),
        ({"inputs": []}, "malformed_json", "inputs"),
        ({"inputs": [_image()], "id": 42}, "malformed_json", "id"),
    ],
)
def test_other_refusals_use_the_catalogue(document: dict, code: str, named: str) -> None:
    error = _refused(document)
    assert error.code == code and named in error.message, error.message


def _binary_images(count: int, size: float) -> dict:
    tensor = {"name": "image", "shape": [count], "datatype": "BYTES", "parameters": {"binary_data_size": size}}
    return {"inputs": [tensor]}


@pytest.mark.parametrize(
    ("count", "binary", "named"),
    [
        (1, _blob(b"abc") + b"x", "1 bytes follow its last element"),
        (1, _blob(b"", b""), "4 bytes follow its last element"),
        (1, _blob(b"") * 1_000_000, "3999996 bytes follow its last element"),  # read up to the shape, no further
        (3, _blob(b"a", b"b"), "ends inside element 2's length"),
        (1, b"abc", "ends inside element 0's length"),
        (1, struct.pack("<I", 9) + b"abc", "element 0 declares 9 bytes; 3 remain"),
    ],
)
def test_binary_bytes_must_hold_exactly_the_shapes_elements(count: int, binary: bytes, named: str) -> None:
    assert named in _refused(_binary_images(count, len(binary)), binary).message


def test_binary_sizes_must_add_up() -> None:
    assert "binary_data_size 7, but 8 bytes" in _refused(_binary_images(1, 7), _blob(b"abcd")).message
    assert "byte count, not 7.5" in _refused(_binary_images(1, 7.5), _blob(b"abc")).message
    assert "no input declares" in _refused({"inputs": [_image()]}, b"extra").message
    assert "give its `data`" in _refused({"inputs": [_image(parameters={"binary_data_size": 4})]}, b"abcd").message


def test_the_header_length_must_lie_inside_the_body() -> None:
    for header in ("0", "-1", "abc", "99999", "1" * 30):
        assert "Inference-Header-Content-Length" in _refused({"inputs": [_image()]}, b"", header).message
    error = _refused({"inputs": [_image()]}, b"", "5")  # a JSON object cut short
    assert error.code == "malformed_json"


def test_fp32_binary_of_the_wrong_size_or_not_finite_is_refused() -> None:
    fp32 = {"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32"}
    assert "602112" in _refused({"inputs": [{**fp32, "parameters": {"binary_data_size": 8}}]}, b"\0" * 8).message
    nan = np.zeros(VALUES, dtype="<f4")
    nan[5] = np.nan
    document = {"inputs": [{**fp32, "parameters": {"binary_data_size": nan.nbytes}}]}
    assert "NaN" in _refused(document, nan.tobytes()).message


def _result(scores: dict[str, list[float]]) -> ClassifyResult:
    ranked = {
        head: [LabelScore(f"{head}-{index}", index, round(values[index], 6)) for index in np.argsort(values)[::-1]]
        for head, values in scores.items()
    }
    arrays = {head: np.array(values, dtype=np.float32) for head, values in scores.items()}
    return ClassifyResult([ImageResult(ranked, 0.0, 0.0, 0.0, 1, arrays)], 0.0)


def test_answers_in_json_and_binary_as_the_extensions_lay_them_out() -> None:
    result = _result({"imagenet": [0.1, 0.7, 0.2], "cifar10": [0.25, 0.75]})
    request = ClassifyRequest([ImageInput("x", b"")], frozenset({"imagenet", "cifar10"}), 2, scores=True)
    outputs = [OutputChoice("imagenet", 2, True), OutputChoice("cifar10", 0, True), OutputChoice("imagenet", 1, False)]
    body, headers = encode_infer(InferCall(request, outputs, "abc", None), result, "resnet50", "1")
    length = int(headers["Inference-Header-Content-Length"])
    assert headers["Content-Type"] == "application/octet-stream"
    answer = json.loads(body[:length])
    assert answer["model_name"] == "resnet50" and answer["model_version"] == "1" and answer["id"] == "abc"
    classified, probabilities, inline = answer["outputs"]
    assert (classified["datatype"], classified["shape"]) == ("BYTES", [1, 2])
    assert (probabilities["datatype"], probabilities["shape"]) == ("FP32", [1, 2])
    assert inline["data"] == ["0.700000:1:imagenet-1"] and "parameters" not in inline
    rest = body[length:]
    first = classified["parameters"]["binary_data_size"]
    assert rest[:first] == _blob(b"0.700000:1:imagenet-1", b"0.200000:2:imagenet-2")
    assert np.frombuffer(rest[first:], dtype="<f4").tolist() == [0.25, 0.75]
    assert len(rest) == first + probabilities["parameters"]["binary_data_size"]


def test_an_all_json_answer_has_no_header_length() -> None:
    result = _result({"imagenet": [0.5, 0.5]})
    request = ClassifyRequest([ImageInput("x", b"")], frozenset({"imagenet"}), 1, scores=True)
    body, headers = encode_infer(InferCall(request, [OutputChoice("imagenet", 0, False)], None, None), result, "m", "1")
    assert headers == {"Content-Type": "application/json"}
    assert json.loads(body) == {
        "model_name": "m",
        "model_version": "1",
        "outputs": [{"name": "imagenet", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 0.5]}],
    }


def test_a_normalised_tensor_turns_back_into_its_pixels_and_out_of_range_values_are_clipped() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    normalised = ((pixels - np.array(MEAN_255, dtype=np.float32)) / np.array(STD_255, dtype=np.float32)).transpose(
        2, 0, 1
    )
    np.testing.assert_array_equal(pixels_from_normalised(normalised.astype(np.float32)), pixels)
    extreme = np.full((3, 224, 224), 50.0, dtype=np.float32)
    assert (pixels_from_normalised(extreme) == 255).all() and (pixels_from_normalised(-extreme) == 0).all()
