"""The /v1/predict JSON body, `{"instances": [{"b64": ...}], "heads": ..., "top_k": ...}`, into images and parameters.

Bounded before it is parsed, parsed with every key given once and every number in range, its structure checked and
its instances counted; only then is any base64 decoded. It runs in a thread (see rest_v1_request.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable

from app.errors import ApiError, Problems
from app.frontends.rest_v1_params import JSON_FIELDS, PARAMETERS, Parameters, repeated
from app.pipeline import ImageInput

JSON_EXAMPLE = {"instances": [{"b64": "<base64 image>"}], "heads": "imagenet", "top_k": 5}
MAX_INTEGER_CHARS = 20  # a sign and 19 digits: more than any count or top_k; longer integers are out of range
MAX_PARAMETER_COMMAS = 16  # commas a JSON body may hold beyond two per instance: between fields, in heads


def too_many_images(count: int, limit: int) -> ApiError:
    return ApiError(
        Problems.TOO_MANY_IMAGES,
        f"{count} images in one request; at most {limit}",
        accepted={"max_images": limit},
    )


class OutOfRange:
    """A JSON number no field of ours can hold (Python's int() would refuse 4,300+ digits with a ValueError)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<a number of {len(self.text)} characters>"

    __str__ = __repr__


def _json_int(text: str) -> int | OutOfRange:
    return OutOfRange(text) if len(text) > MAX_INTEGER_CHARS else int(text)


def _json_float(text: str) -> float | OutOfRange:
    value = float(text)
    return value if math.isfinite(value) else OutOfRange(text)


def _json_constant(name: str) -> None:
    raise ApiError(Problems.MALFORMED_JSON, f"{name} is not a JSON number", accepted=JSON_EXAMPLE)


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json.loads' object hook: a key given twice in one object is refused, not silently overridden."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise repeated(_first_repeated(key for key, _ in pairs), "JSON body", "JSON body")
    return document


def _first_repeated(keys: Iterable[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no key is repeated")


def _check_json_size(body: bytes, max_images: int) -> None:
    """Before parsing, two scans at memory speed bound what the parser may be asked to build.

    Base64 holds neither quotes nor commas, so a valid body has one `"b64"` per instance, and at most two commas
    per instance (a separator, a data: URL) plus a few for the parameters. A body of a million tiny instances, or
    of millions of empty arrays, would otherwise cost the parser seconds of CPU with the GIL held (no thread helps).
    """
    instances = body.count(b'"b64"')
    if instances > max_images:
        raise too_many_images(instances, max_images)
    commas, budget = body.count(b","), 2 * max_images + MAX_PARAMETER_COMMAS
    if commas > budget:
        raise ApiError(
            Problems.MALFORMED_JSON,
            f"the JSON body holds {commas} commas; a body of at most {max_images} images holds at most {budget}",
            accepted=JSON_EXAMPLE,
        )


def load_document(body: bytes, max_images: int, example: object = JSON_EXAMPLE) -> dict[str, object]:
    """Bound and parse a JSON body of base64 images into its top-level object (every key once, numbers in range).

    Shared with KServe V1's :predict, whose body has the same shape of instances; `example` is what errors show."""
    _check_json_size(body, max_images)
    try:
        document = json.loads(
            body,
            object_pairs_hook=_json_object,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=_json_constant,
        )
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(Problems.MALFORMED_JSON, f"the body is not valid JSON: {exc}", accepted=example) from None
    if not isinstance(document, dict):
        raise ApiError(Problems.MALFORMED_JSON, "the JSON body must be an object", accepted=example)
    return document


def parse_json(body: bytes, params: Parameters, max_images: int) -> list[ImageInput]:
    """Bound, parse, check the structure and count the instances; only then decode their base64 (in a thread)."""
    document = load_document(body, max_images)
    unknown = sorted(set(document) - set(JSON_FIELDS))
    if unknown:
        raise ApiError(
            Problems.UNKNOWN_FIELD, f"unknown JSON field(s): {', '.join(map(repr, unknown))}", accepted=JSON_EXAMPLE
        )
    for key in PARAMETERS:
        if key in document:
            value = document[key]
            if any(isinstance(item, OutOfRange) for item in (value if isinstance(value, list) else [value])):
                raise ApiError(
                    Problems.MALFORMED_JSON, f"{key} holds a number out of range: {value!r}", accepted=JSON_EXAMPLE
                )
            params.give(key, ",".join(map(str, value)) if isinstance(value, list) else value, "JSON body")
    instances = document.get("instances")
    if not isinstance(instances, list):
        raise ApiError(
            Problems.MALFORMED_JSON, "'instances' must be a list of {\"b64\": ...} objects", accepted=JSON_EXAMPLE
        )
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict) or set(instance) != {"b64"} or not isinstance(instance["b64"], str):
            raise ApiError(
                Problems.MALFORMED_JSON,
                f'instances[{index}] must be exactly {{"b64": "<string>"}}',
                accepted=JSON_EXAMPLE,
            )
    if len(instances) > max_images:
        raise too_many_images(len(instances), max_images)
    return [decode_instance(f"instances[{index}]", instance["b64"]) for index, instance in enumerate(instances)]


def decode_instance(name: str, b64: str, field: str = ".b64") -> ImageInput:
    """One base64 image (or data: URL) -> its bytes; 400 malformed_base64 naming it (`name` + `field`)."""
    text = b64.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]  # a data URL: keep the payload
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(
            Problems.MALFORMED_BASE64,
            f"{name}{field} is not valid base64: {exc}",
            accepted="standard base64 (RFC 4648), optionally as a data: URL",
        ) from None
    return ImageInput(name, data)
