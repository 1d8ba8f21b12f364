"""What a running service serves, in a few lines: model, runtime, weights per head, batching and limits.

visionserve models                      # GET /v1/models of 127.0.0.1:8080, without its 1,010 labels
visionserve models --json               # the whole answer, indented
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli.client import add_api_key_arguments, api_key, base_url, request_json
from app.cli.exits import OK


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "models",
        help="show what a running service serves (GET /v1/models, summarised)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", type=base_url, default="http://127.0.0.1:8080", help="base URL of the service (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print the whole answer, indented")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    add_api_key_arguments(parser)
    parser.set_defaults(run=run)


def summary(answer: dict[str, Any]) -> list[str]:
    """The answer of GET /v1/models as lines a person reads at a glance."""
    model, batching, limits = answer["model"], answer["batching"], answer["limits"]
    lines = [
        f"model     {model['name']} version {model['version']} (server {model['server_version']})",
        f"runtime   {model['runtime']} {model['precision']} on {model['device']}, {model['threads']} threads",
    ]
    for name, head in answer["heads"].items():
        if head["available"]:
            weights = head["weights"]
            checksum = f", sha256 {weights['sha256'][:12]}..." if weights.get("sha256") else ""
            lines.append(f"head      {name}: {head['classes']} classes, {weights['source']}{checksum}")
        else:
            lines.append(f"head      {name}: not loaded (set cifar_head to serve it)")
    lines.append(
        f"batching  up to {batching['max_batch_size']} images, {batching['max_wait_ms']:g} ms wait, "
        f"queue {batching['max_queue']}"
    )
    lines.append(
        f"limits    {limits['max_images']} images and {limits['max_body_bytes']} bytes per request, "
        f"{limits['max_pixels']} pixels per image, top_k {limits['default_top_k']} by default"
    )
    if model["random_weights"]:
        lines.append("WARNING   random weights: predictions are meaningless")
    return lines


def run(args: argparse.Namespace) -> int:
    answer = request_json(f"{args.url}/v1/models", args.timeout, api_key=api_key(args))
    print(json.dumps(answer, indent=2) if args.json else "\n".join(summary(answer)))
    return OK
