"""The error catalogue: every reason a request is refused, declared once, and the exception that carries one.

Each `Problem` names its wire `code`, its HTTP `status`, the `reason` label it counts under in
`visionserve_rejections_total`, and a one-line `summary` for the OpenAPI document. Handlers, metrics and
`/openapi.json` all read this catalogue; nothing else spells a code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused."""

    code: str
    status: int
    reason: str  # the metric label: a small, fixed set shared by related codes
    summary: str


class Problems:
    """The catalogue, one attribute per problem."""

    EMPTY_BODY = Problem("empty_body", 400, "invalid_request", "The request body is empty.")
    NO_IMAGES = Problem("no_images", 400, "invalid_request", "The request holds no image.")
    EMPTY_IMAGE = Problem("empty_image", 400, "invalid_image", "An image is 0 bytes long.")
    INVALID_IMAGE = Problem("invalid_image", 400, "invalid_image", "An image is truncated or corrupt.")
    UNKNOWN_HEAD = Problem("unknown_head", 400, "invalid_request", "A head that does not exist.")
    HEAD_UNAVAILABLE = Problem("head_unavailable", 400, "head_unavailable", "A head this server does not load.")
    INVALID_TOP_K = Problem("invalid_top_k", 400, "invalid_request", "top_k is not an integer in range.")
    UNKNOWN_PARAMETER = Problem("unknown_parameter", 400, "invalid_request", "An unknown query parameter.")
    UNKNOWN_FIELD = Problem("unknown_field", 400, "invalid_request", "An unknown JSON or form field.")
    REPEATED_PARAMETER = Problem(
        "repeated_parameter", 400, "invalid_request", "A parameter or JSON key given more than once."
    )
    INVALID_TIMEOUT = Problem(
        "invalid_timeout",
        400,
        "invalid_request",
        "X-Request-Timeout-Ms (or OIP V2's parameters.timeout) is not one positive integer.",
    )
    INVALID_TENSOR = Problem(
        "invalid_tensor",
        400,
        "invalid_request",
        "An OIP V2 input, output or parameter does not fit the model: name, datatype, shape, size or value.",
    )
    MALFORMED_JSON = Problem("malformed_json", 400, "invalid_request", "The JSON body does not parse or fit.")
    MALFORMED_BASE64 = Problem("malformed_base64", 400, "invalid_request", "An instance is not valid base64.")
    MALFORMED_MULTIPART = Problem("malformed_multipart", 400, "invalid_request", "The multipart body does not parse.")
    MALFORMED_REQUEST = Problem(
        "malformed_request", 400, "invalid_request", "The request line or headers are not valid HTTP/1.1."
    )
    UNAUTHORIZED = Problem(
        "unauthorized", 401, "unauthorized", "No API key, or one that is not accepted (Bearer or X-API-Key)."
    )
    NOT_FOUND = Problem("not_found", 404, "not_found", "No such route.")
    MODEL_NOT_FOUND = Problem(
        "model_not_found", 404, "not_found", "No such model or model version (OIP V2, KServe V1): resnet50."
    )
    METHOD_NOT_ALLOWED = Problem("method_not_allowed", 405, "method_not_allowed", "The route takes another method.")
    REQUEST_TIMEOUT = Problem(
        "request_timeout", 408, "request_timeout", "The header or body stalled (header_timeout_s, body_timeout_s)."
    )
    PAYLOAD_TOO_LARGE = Problem("payload_too_large", 413, "payload_too_large", "The body is over max_body_bytes.")
    TOO_MANY_PIXELS = Problem(
        "too_many_pixels", 413, "too_many_pixels", "An image is over max_pixels (decompression bombs included)."
    )
    PIXEL_BUDGET_EXCEEDED = Problem(
        "pixel_budget_exceeded", 413, "too_many_pixels", "The images' headers declare more than max_request_pixels."
    )
    TOO_MANY_IMAGES = Problem("too_many_images", 413, "payload_too_large", "More images than max_images.")
    UNSUPPORTED_CONTENT_TYPE = Problem(
        "unsupported_content_type", 415, "unsupported_media_type", "The Content-Type is not accepted."
    )
    UNSUPPORTED_IMAGE_FORMAT = Problem(
        "unsupported_image_format", 415, "unsupported_media_type", "An image format that is refused, even renamed."
    )
    NOT_AN_IMAGE = Problem("not_an_image", 415, "unsupported_media_type", "The data is not an image.")
    HEADERS_TOO_LARGE = Problem(
        "headers_too_large", 431, "headers_too_large", "The request line and headers are over max_header_bytes."
    )
    INTERNAL_ERROR = Problem("internal_error", 500, "internal_error", "The server failed; the answer has a request id.")
    QUEUE_FULL = Problem("queue_full", 503, "queue_full", "The queue is at max_queue: retry after Retry-After.")
    NOT_READY = Problem("not_ready", 503, "not_ready", "Still loading, or the batcher failed: retry after Retry-After.")
    DRAINING = Problem("draining", 503, "draining", "This worker is shutting down: retry after Retry-After.")
    TOO_MANY_CONNECTIONS = Problem(
        "too_many_connections", 503, "too_many_connections", "Worker at max_connections: retry after Retry-After."
    )
    DEADLINE_EXCEEDED = Problem(
        "deadline_exceeded", 504, "deadline_exceeded", "The request's deadline passed before its images ran."
    )


CATALOGUE: tuple[Problem, ...] = tuple(value for value in vars(Problems).values() if isinstance(value, Problem))
CODES: tuple[str, ...] = tuple(problem.code for problem in CATALOGUE)
REASONS: tuple[str, ...] = tuple(dict.fromkeys(problem.reason for problem in CATALOGUE))


def problems_with_status(status: int) -> list[Problem]:
    return [problem for problem in CATALOGUE if problem.status == status]


class ApiError(Exception):
    """A refusal answered as JSON: the problem, what was wrong, and what is accepted."""

    def __init__(
        self,
        problem: Problem,
        message: str,
        accepted: object = None,
        *,
        headers: dict[str, str] | None = None,
        pause_s: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.accepted = accepted
        self.headers = headers or {}
        self.pause_s = pause_s  # the connection is not read again for this long (app/connections.py)

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def code(self) -> str:
        return self.problem.code
