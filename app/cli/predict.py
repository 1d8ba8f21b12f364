"""Classify images with a running service: a table of labels and scores per image and head, or the JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from app.cli.client import add_api_key_arguments, api_key, base_url, multipart, request, request_json
from app.cli.exits import EXIT_CODES, OK, CommandError, UsageError
from app.cli.sample import sample_jpeg
from app.settings import HEADS

HEAD_WIDTH = max(map(len, HEADS))
PART_OVERHEAD = 512  # multipart header bytes per image, generously
EXAMPLES = """examples:
  visionserve predict cat.jpg dog.png
  visionserve predict --heads imagenet,cifar10 --top-k 3 photos/*.jpg
  visionserve predict --url http://127.0.0.1:8080 - < cat.jpg    # the image from stdin
  visionserve predict --sample    # a built-in synthetic gradient: tests the path, not the model

Images go in as few requests as the server's limits (max_images, max_body_bytes) allow, so they batch.
Output: one line per image and head. With --json, the server's answer as it came, one document per request.
A warning goes to stderr when the server serves random weights."""


@dataclass(frozen=True)
class Picture:
    name: str  # as the user named it: the table's first column
    data: bytes


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "predict",
        help="classify images with a running service (a table, or --json)",
        description=__doc__,
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files; - reads one from stdin")
    parser.add_argument(
        "--url", type=base_url, default="http://127.0.0.1:8080", help="base URL of the service (default %(default)s)"
    )
    parser.add_argument("--heads", help=f"comma-separated, from: {','.join(HEADS)} (default: the server's)")
    parser.add_argument("--top-k", type=int, help="labels per image and head (default: the server's)")
    parser.add_argument("--json", action="store_true", help="print the server's JSON instead of the table")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each answer (default %(default)g)"
    )
    parser.add_argument("--sample", action="store_true", help="also send a built-in synthetic picture")
    add_api_key_arguments(parser)
    parser.set_defaults(run=run)


def read_pictures(paths: Sequence[str], sample: bool) -> list[Picture]:
    """Every picture read before anything is sent: a missing file is a usage error."""
    pictures = [Picture("(sample)", sample_jpeg())] if sample else []
    for path in paths:
        try:
            data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        pictures.append(Picture("(stdin)" if path == "-" else path, data))
    if not pictures:
        raise UsageError("name at least one IMAGE (- for stdin), or give --sample")
    return pictures


def batches(pictures: Sequence[Picture], max_images: int, max_bytes: int) -> Iterator[list[Picture]]:
    """Consecutive groups that fit one request each; a picture too large even alone goes alone (the server says 413)."""
    batch: list[Picture] = []
    size = 0
    for picture in pictures:
        cost = len(picture.data) + PART_OVERHEAD
        if batch and (len(batch) == max_images or size + cost > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(picture)
        size += cost
    if batch:
        yield batch


def random_weights_warning(url: str, described: dict[str, Any]) -> str | None:
    """A warning line when GET /v1/models says random weights, naming the heads that have them."""
    if not described["model"]["random_weights"]:
        return None
    heads = [name for name, head in described["heads"].items() if head["weights"]["kind"] == "random"]
    return f"WARNING: {url} serves RANDOM weights ({', '.join(heads)}): its labels and scores are meaningless"


def table(pictures: Sequence[Picture], answer: dict[str, Any], name_width: int) -> Iterator[str]:
    """`name  head  label score, label score, ...` for each picture and head."""
    for picture, prediction in zip(pictures, answer["predictions"], strict=True):
        for head, top in prediction["heads"].items():
            labels = ", ".join(f"{entry['label']} {entry['score']:.3f}" for entry in top)
            yield f"{picture.name:<{name_width}}  {head:<{HEAD_WIDTH}}  {labels}"


def classify(url: str, batch: Sequence[Picture], query: str, timeout: float, key: str = "") -> bytes:
    """POST one multipart request; a refusal of a lone picture is prefixed with its name."""
    body, content_type = multipart([(Path(picture.name).name, picture.data) for picture in batch])
    try:
        return request(f"{url}/v1/predict?{query}", timeout, body, content_type, key)
    except CommandError as exc:
        raise CommandError(f"{batch[0].name}: {exc}" if len(batch) == 1 else str(exc)) from None


def run(args: argparse.Namespace) -> int:
    pictures = read_pictures(args.images, args.sample)
    key = api_key(args)
    query = urlencode(
        {key: value for key, value in (("heads", args.heads), ("top_k", args.top_k)) if value is not None}
    )
    width = max(len(picture.name) for picture in pictures)
    try:
        described = request_json(f"{args.url}/v1/models", args.timeout, api_key=key)
        warning = random_weights_warning(args.url, described)
        if warning:
            print(f"visionserve predict: {warning}", file=sys.stderr)
        limits = described["limits"]
        for batch in batches(pictures, limits["max_images"], limits["max_body_bytes"]):
            answer = classify(args.url, batch, query, args.timeout, key)
            print(answer.decode() if args.json else "\n".join(table(batch, json.loads(answer), width)), flush=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"unexpected answer from {args.url}: {exc!r}") from None
    return OK
