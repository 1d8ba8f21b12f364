"""An OIP V2 input tensor's data, read from JSON or from the binary section after it, each element checked.

Binary data is as Triton's binary tensor data extension lays it out: little-endian, row-major, a BYTES element as a
4-byte length then its bytes. In JSON a BYTES element is a base64 string; FP32 numbers come flat or nested.
"""

from __future__ import annotations

import struct

import msgspec
import numpy as np

from app.answers_kserve import Parameter, RequestInput
from app.errors import ApiError, Problems
from app.frontends.rest_v1_json import decode_instance
from app.imaging import INPUT_SIZE
from app.pipeline import ImageInput

HEADER_LENGTH = "Inference-Header-Content-Length"
TENSOR_SHAPE = (3, INPUT_SIZE, INPUT_SIZE)
TENSOR_VALUES = 3 * INPUT_SIZE * INPUT_SIZE
LENGTH = struct.Struct("<I")  # a BYTES element's length prefix
_NESTED = list[list[list[list[float]]]]


def integer(value: Parameter) -> int | None:
    """A JSON integer parameter (not a boolean), or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def invalid(message: str) -> ApiError:
    """400 invalid_tensor: the message names the input, output or parameter at fault."""
    return ApiError(Problems.INVALID_TENSOR, message)


def binary_section(tensor: RequestInput, binary: bytes, where: str) -> bytes:
    declared = tensor.parameters["binary_data_size"]
    size = integer(declared)
    if size is None or size < 0:
        raise invalid(f"{where} parameter 'binary_data_size' must be a byte count, not {declared!r}")
    if size != len(binary):
        raise invalid(
            f"{where} declares binary_data_size {size}, but {len(binary)} bytes follow the JSON "
            f"({HEADER_LENGTH} {'absent' if not binary else 'divides the body there'})"
        )
    return binary


def split_bytes(data: bytes, count: int, where: str) -> list[bytes]:
    """A BYTES tensor in binary: each element a 4-byte little-endian length, then its bytes; exactly `count`
    (read element by element up to `count`, so a body of a million empty elements costs no more than `count`)."""
    blobs, offset = [], 0
    for index in range(count):
        if offset + LENGTH.size > len(data):
            raise invalid(f"{where} has shape [{count}] but its binary data ends inside element {index}'s length")
        (length,) = LENGTH.unpack_from(data, offset)
        offset += LENGTH.size
        if offset + length > len(data):
            raise invalid(f"{where}: element {index} declares {length} bytes; {len(data) - offset} remain")
        blobs.append(data[offset : offset + length])
        offset += length
    if offset != len(data):
        raise invalid(f"{where} has shape [{count}] but {len(data) - offset} bytes follow its last element")
    return blobs


def json_images(tensor: RequestInput, count: int, where: str) -> list[ImageInput]:
    try:
        elements = msgspec.json.decode(tensor.data, type=list[str])
    except msgspec.ValidationError as exc:
        raise invalid(f"{where}: data must be a list of base64 strings, one per image ({exc})") from None
    if len(elements) != count:
        raise invalid(f"{where} has shape [{count}] but its data holds {len(elements)} elements")
    return [decode_instance(f"{where}[{index}]", text, "") for index, text in enumerate(elements)]


def binary_floats(data: bytes, count: int, where: str) -> np.ndarray:
    expected = count * TENSOR_VALUES * 4
    if len(data) != expected:
        raise invalid(f"{where}: {len(data)} bytes of binary data; FP32 [{count}, 3, 224, 224] is {expected}")
    return _finite(np.frombuffer(data, dtype="<f4"), where)


def json_floats(tensor: RequestInput, count: int, where: str) -> np.ndarray:
    """FP32 data in JSON: numbers, flat or nested as [N][3][224][224] (the protocol allows both)."""
    array = None
    for kind in (list[float], _NESTED):
        try:
            values = msgspec.json.decode(tensor.data, type=kind)
        except msgspec.ValidationError:
            continue
        try:
            array = np.asarray(values, dtype=np.float32)
        except ValueError:  # ragged nesting
            array = None
        break
    if array is None or array.shape not in ((count * TENSOR_VALUES,), (count, *TENSOR_SHAPE)):
        raise invalid(f"{where}: data must be {count} x 3 x 224 x 224 numbers, flat or nested as [N][3][224][224]")
    return _finite(array.reshape(-1), where)


def _finite(values: np.ndarray, where: str) -> np.ndarray:
    if not np.isfinite(values).all():
        raise invalid(f"{where} holds NaN or infinite values")
    return values
