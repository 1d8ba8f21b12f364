"""A small HTTP client on the standard library: GET or POST, JSON answers, multipart bodies, plain-word errors."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.api_keys import ApiKeysError, read_keys
from app.cli.exits import CommandError, UsageError

API_KEY_VARIABLE = "VISIONSERVE_API_KEY"


def add_api_key_arguments(parser: argparse.ArgumentParser) -> None:
    """--api-key and --api-key-file, for a service that requires API keys."""
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_VARIABLE, ""),
        help=f"API key sent as Authorization: Bearer (default: ${API_KEY_VARIABLE}; prefer the variable, "
        "a flag shows in the process list)",
    )
    parser.add_argument(
        "--api-key-file",
        type=Path,
        metavar="PATH",
        help="read the API key from a file or a mounted Secret directory, as the service reads its keys "
        "(the first key); wins over --api-key",
    )


def api_key(args: argparse.Namespace) -> str:
    """The key the command sends: --api-key-file's first key, else --api-key (or its variable), else none."""
    if args.api_key_file is None:
        return args.api_key
    try:
        return read_keys(args.api_key_file, "--api-key-file")[0]
    except ApiKeysError as exc:
        raise UsageError(str(exc)) from None


def request(url: str, timeout: float, body: bytes | None = None, content_type: str = "", api_key: str = "") -> bytes:
    """GET (or POST when `body` is given) and return the answer's body; a CommandError says why there is none."""
    headers = {"Content-Type": content_type} if content_type else {}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=timeout) as answer:
            return answer.read()
    except urllib.error.HTTPError as exc:
        raise _server_error(exc) from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason  # "Connection refused", not "[Errno 111] ..."
        raise CommandError(f"cannot reach {url}: {reason}") from None
    except TimeoutError:
        raise CommandError(f"no answer from {url} within {timeout:g} s") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise CommandError(f"{url}: the connection failed ({exc.__class__.__name__}: {exc})") from None


def request_json(url: str, timeout: float, body: bytes | None = None, content_type: str = "", api_key: str = "") -> Any:
    """`request`, with the answer parsed as JSON."""
    return json.loads(request(url, timeout, body, content_type, api_key))


def _server_error(exc: urllib.error.HTTPError) -> CommandError:
    """Our services answer {"error": {"code", "message"}} (or under /v2, {"error": "<message>", "code"}); anything
    else (a proxy's page) is shown briefly."""
    body = exc.read()
    try:
        document = json.loads(body)
        error = document["error"]
        if isinstance(error, str):
            return CommandError(f"{exc.code} {document['code']}: {error}")
        return CommandError(f"{exc.code} {error['code']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace").strip()[:200] or "(no body)"
        return CommandError(f"{exc.code} {exc.reason}: {text}")


def multipart(files: Sequence[tuple[str, bytes]]) -> tuple[bytes, str]:
    """One file part per (filename, data); returns the body and its Content-Type."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for filename, data in files:
        quoted = filename.translate({ord('"'): "%22", ord("\r"): "%0D", ord("\n"): "%0A"})  # as browsers do
        chunks += [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="image"; filename="{quoted}"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def base_url(text: str) -> str:
    """An argparse type: an http(s) base URL, without its trailing slash."""
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text.rstrip("/")
