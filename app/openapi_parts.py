"""Pieces of the OpenAPI document that every protocol's paths are written with."""

from __future__ import annotations

from app.errors import problems_with_status
from app.settings import HEADS, MAX_TOP_K, TIMEOUT_HEADER, Settings

PREDICT_ERROR_STATUSES = (400, 408, 413, 415, 431, 500, 503, 504)  # 408 and 431: app/connections.py, any route
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}
CHALLENGE = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="visionserve"'}}


def json_content(description: str, schema: dict, headers: dict | None = None) -> dict:
    response: dict = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def error_response(status: int, error_schema: dict) -> dict:
    """One status's response: the catalogue's problems with that status, by code."""
    problems = problems_with_status(status)
    description = "; ".join(f"`{problem.code}`: {problem.summary}" for problem in problems)
    return json_content(description, error_schema, {503: RETRY_AFTER, 401: CHALLENGE}.get(status))


def timeout_parameter(settings: Settings) -> dict:
    """The X-Request-Timeout-Ms header, which every classifying route takes."""
    return {
        "name": TIMEOUT_HEADER,
        "in": "header",
        "schema": {"type": "integer", "minimum": 1},
        "description": "The request's deadline in milliseconds (capped at request_timeout_s, "
        f"{round(settings.request_timeout_s * 1000)} ms here): images not run by then are dropped and the "
        "answer is 504.",
    }


def query_parameters(settings: Settings) -> list[dict]:
    """heads and top_k in the query string (/v1/predict, KServe V1's :predict)."""
    return [
        {
            "name": "heads",
            "in": "query",
            "schema": {"type": "string", "default": "imagenet"},
            "description": f"Comma-separated heads: {', '.join(HEADS)}. Both cost one backbone pass.",
        },
        {
            "name": "top_k",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": settings.default_top_k},
        },
    ]


def get_operation(summary: str, responses: dict) -> dict:
    return {"get": {"summary": summary, "responses": responses}}
