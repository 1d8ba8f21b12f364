"""The Open Inference Protocol V2 infer request and answer on the wire: JSON, the binary tensor data extension and
the classification extension, into one ClassifyRequest and back.

A request carries exactly one input: `image` (BYTES [N], each element one encoded image; base64 strings in JSON)
or `input` (FP32 [N, 3, 224, 224], ImageNet-normalised). Outputs are heads: `imagenet` (FP32 [N, 1000]) and
`cifar10` (FP32 [N, 10]), or with `parameters.classification: k` BYTES [N, k] of "score:index:label". Binary data
(Inference-Header-Content-Length, `binary_data_size`, `binary_data`, `binary_data_output`) is read and written
as Triton's extension describes (the data itself: oip_v2_tensors.py).
Everything is checked before any image is decoded; each refusal names the input, output or parameter at fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np

from app.answers import encode
from app.answers_kserve import InferRequest, InferResponse, Parameters, RequestInput, ResponseOutput
from app.errors import ApiError, Problems
from app.frontends.oip_v2_tensors import (
    HEADER_LENGTH,
    LENGTH,
    TENSOR_SHAPE,
    binary_floats,
    binary_section,
    integer,
    invalid,
    json_floats,
    json_images,
    split_bytes,
)
from app.pipeline import ClassifyRequest, ClassifyResult, ImageInput, TensorInput

IMAGE_INPUT = "image"
TENSOR_INPUT = "input"
INPUT_TYPES = {IMAGE_INPUT: "BYTES", TENSOR_INPUT: "FP32"}
REQUEST_PARAMETERS = ("binary_data_output", "timeout")
INPUT_PARAMETERS = ("binary_data_size",)
OUTPUT_PARAMETERS = ("binary_data", "classification")
_DECODER = msgspec.json.Decoder(InferRequest)


@dataclass(frozen=True)
class OutputChoice:
    """One requested output: a head, as probabilities (classification 0) or its top `classification` classes."""

    head: str
    classification: int
    binary: bool


@dataclass(frozen=True)
class InferCall:
    """A parsed infer request: what the pipeline runs, and how the answer is to be written."""

    request: ClassifyRequest
    outputs: list[OutputChoice]
    id: str | None
    timeout_s: float | None  # parameters.timeout, in seconds


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(the JSON object, the binary tensor data after it) as Inference-Header-Content-Length divides the body."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and 0 < int(text) <= len(body)):
        raise invalid(f"{HEADER_LENGTH}={header_length[:40]!r} is not a length from 1 to the body's {len(body)} bytes")
    return body[: int(text)], body[int(text) :]


def _decode_request(header: bytes) -> InferRequest:
    try:
        return _DECODER.decode(header)
    except msgspec.ValidationError as exc:
        raise ApiError(Problems.MALFORMED_JSON, f"the inference request does not fit the protocol: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(Problems.MALFORMED_JSON, f"the inference request is not valid JSON: {exc}") from None


def _check_parameters(parameters: Parameters, accepted: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(parameters) - set(accepted))
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ApiError(
            Problems.UNKNOWN_PARAMETER,
            f"{where} has unknown parameter(s) {names}; accepted: {', '.join(accepted) or 'none'}",
            accepted=list(accepted),
        )


def _flag(parameters: Parameters, key: str, where: str, default: bool) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise invalid(f"{where} parameter {key!r} must be true or false, not {value!r}")
    return value


def _timeout_s(parameters: Parameters) -> float | None:
    """parameters.timeout: microseconds, as Triton's schedule policy defines it."""
    if "timeout" not in parameters:
        return None
    micros = integer(parameters["timeout"])
    if micros is None or micros < 1:
        raise ApiError(
            Problems.INVALID_TIMEOUT,
            f"parameters.timeout={parameters['timeout']!r} is not a positive integer of microseconds",
            accepted={"timeout": "microseconds, at least 1 (larger than request_timeout_s is capped)"},
        )
    return micros / 1_000_000


def parse_infer(body: bytes, header_length: str | None, heads: dict[str, int], max_images: int) -> InferCall:
    """A whole infer request (JSON, then binary tensors) -> InferCall, or a 4xx ApiError naming what is wrong.

    `heads`: the loaded heads and their class counts, in the model's output order."""
    header, binary = split_body(body, header_length)
    parsed = _decode_request(header)
    _check_parameters(parsed.parameters, REQUEST_PARAMETERS, "the request")
    binary_default = _flag(parsed.parameters, "binary_data_output", "the request", False)
    if len(parsed.inputs) != 1:
        names = ", ".join(repr(one.name) for one in parsed.inputs)
        raise invalid(f"{len(parsed.inputs)} inputs ({names}); send exactly one: {IMAGE_INPUT!r} or {TENSOR_INPUT!r}")
    outputs = _outputs(parsed, heads, binary_default)
    timeout_s = _timeout_s(parsed.parameters)
    images = _read_input(parsed.inputs[0], binary, max_images)  # last: it decodes the tensors' data
    classifications = [output.classification for output in outputs if output.classification]
    request = ClassifyRequest(
        images,
        frozenset(output.head for output in outputs),
        max(classifications, default=1),
        scores=any(not output.classification for output in outputs),
    )
    request_id = None if isinstance(parsed.id, msgspec.UnsetType) else parsed.id
    return InferCall(request, outputs, request_id, timeout_s)


def _read_input(tensor: RequestInput, binary: bytes, max_images: int) -> list[ImageInput] | list[TensorInput]:
    """The one input's name, datatype, shape, parameters and data, checked; its images or tensors."""
    name = tensor.name
    if name not in INPUT_TYPES:
        raise invalid(
            f"unknown input {name!r}; this model takes {IMAGE_INPUT!r} (BYTES [N], encoded images) "
            f"or {TENSOR_INPUT!r} (FP32 [N, 3, 224, 224], ImageNet-normalised)"
        )
    where = f"input {name!r}"
    if tensor.datatype != INPUT_TYPES[name]:
        raise invalid(f"{where} has datatype {tensor.datatype!r}; it takes {INPUT_TYPES[name]}")
    expected = "[N]" if name == IMAGE_INPUT else "[N, 3, 224, 224]"
    if not tensor.shape or (name == IMAGE_INPUT) != (len(tensor.shape) == 1) or tensor.shape[0] < 1:
        raise invalid(f"{where} has shape {tensor.shape}; it takes {expected} with N >= 1")
    if name == TENSOR_INPUT and tuple(tensor.shape[1:]) != TENSOR_SHAPE:
        raise invalid(f"{where} has shape {tensor.shape}; it takes {expected}")
    count = tensor.shape[0]
    if count > max_images:
        raise ApiError(
            Problems.TOO_MANY_IMAGES,
            f"{where} holds {count} images; at most {max_images}",
            accepted={"max_images": max_images},
        )
    _check_parameters(tensor.parameters, INPUT_PARAMETERS, where)
    in_binary, in_json = "binary_data_size" in tensor.parameters, len(tensor.data) > 0
    if in_binary == in_json:
        raise invalid(f"{where}: give its `data`, or parameters.binary_data_size and binary data after the JSON")
    if in_json and binary:
        raise invalid(f"{len(binary)} bytes follow the JSON, but no input declares binary_data_size")
    data = binary_section(tensor, binary, where) if in_binary else None
    if name == IMAGE_INPUT:
        if data is None:
            return json_images(tensor, count, where)
        return [ImageInput(f"{where}[{index}]", blob) for index, blob in enumerate(split_bytes(data, count, where))]
    values = binary_floats(data, count, where) if data is not None else json_floats(tensor, count, where)
    return [TensorInput(f"{where}[{index}]", one) for index, one in enumerate(values.reshape(count, *TENSOR_SHAPE))]


def _outputs(parsed: InferRequest, heads: dict[str, int], binary_default: bool) -> list[OutputChoice]:
    """The requested outputs (every loaded head when none is named), each checked."""
    if isinstance(parsed.outputs, msgspec.UnsetType):
        return [OutputChoice(head, 0, binary_default) for head in heads]
    if not parsed.outputs:
        raise invalid("`outputs` is empty; name at least one output, or leave `outputs` out for all of them")
    choices: list[OutputChoice] = []
    for output in parsed.outputs:
        where = f"output {output.name!r}"
        if output.name not in heads:
            raise invalid(f"unknown output {output.name!r}; this server's outputs: {', '.join(heads)}")
        if any(choice.head == output.name for choice in choices):
            raise invalid(f"{where} is requested twice")
        _check_parameters(output.parameters, OUTPUT_PARAMETERS, where)
        classes = heads[output.name]
        count = integer(output.parameters.get("classification", 0))
        if count is None or not 0 <= count <= classes:
            raise ApiError(
                Problems.INVALID_TOP_K,
                f"{where} parameter 'classification' is {output.parameters['classification']!r}; "
                f"it takes 1 to {classes}",
                accepted={"min": 1, "max": classes},
            )
        choices.append(OutputChoice(output.name, count, _flag(output.parameters, "binary_data", where, binary_default)))
    return choices


def encode_infer(call: InferCall, result: ClassifyResult, model: str, version: str) -> tuple[bytes, dict[str, str]]:
    """The answer's body and headers: the JSON object, then any binary outputs in order after it."""
    outputs, blobs = [], []
    for choice in call.outputs:
        if choice.classification:
            elements = [
                f"{label.score:.6f}:{label.index}:{label.label}".encode()
                for image in result.images
                for label in image.ranked[choice.head][: choice.classification]
            ]
            shape = [len(result.images), choice.classification]
            output = ResponseOutput(name=choice.head, datatype="BYTES", shape=shape)
            if choice.binary:
                blobs.append(b"".join(LENGTH.pack(len(element)) + element for element in elements))
            else:
                output.data = [element.decode() for element in elements]
        else:
            scores = np.stack([image.scores[choice.head] for image in result.images]).astype("<f4")
            output = ResponseOutput(name=choice.head, datatype="FP32", shape=list(scores.shape))
            if choice.binary:
                blobs.append(scores.tobytes())
            else:
                output.data = scores.reshape(-1).tolist()
        if choice.binary:
            output.parameters = {"binary_data_size": len(blobs[-1])}
        outputs.append(output)
    request_id = msgspec.UNSET if call.id is None else call.id
    answer = InferResponse(model_name=model, model_version=version, id=request_id, outputs=outputs)
    header = encode(answer)
    if not blobs:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(blobs), {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
