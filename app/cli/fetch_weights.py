"""Fetch torchvision ResNet-50 weights into the torch cache (or a folder), verified, and print their sha256.

Run it where a network exists (a CI job, an init container, a laptop), then serve with
VISIONSERVE_WEIGHTS=imagenet (the cache) or VISIONSERVE_WEIGHTS=<file> plus VISIONSERVE_WEIGHTS_SHA256.
Prints `path=<file>` and `sha256=<hex>` on success.

Any other file (a CIFAR-10 head, say: the chart's cifarHead.source url runs this in an init container):
    visionserve fetch-weights --url https://... --sha256 <full hex> --output /path/to/head.pt
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from app.cli.exits import FAILED, OK, USAGE, CommandError, UsageError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fetch-weights",
        help="download torchvision weights into the torch cache, verified",
        description=__doc__,
        epilog=f"exit codes:\n  {OK}  fetched and verified\n  {FAILED}  unknown name, download failed or sha256 "
        f"mismatch (nothing reaches the cache)\n  {USAGE}  usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--weights", default="imagenet", help="torchvision weights name: imagenet (= IMAGENET1K_V2) or IMAGENET1K_V1"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where to put the file (default: the torch hub cache, $TORCH_HOME/hub/checkpoints)",
    )
    parser.add_argument(
        "--mirror",
        default=None,
        help="base URL of a mirror that holds the same file name (e.g. an internal artifact store)",
    )
    parser.add_argument("--sha256", default="", help="expected full sha256; else the hash prefix in the file name")
    parser.add_argument("--url", default=None, help="fetch this file instead (needs --output and the full --sha256)")
    parser.add_argument("--output", type=Path, default=None, help="with --url: the file to write")
    parser.set_defaults(run=run)


def fetch(weights_name: str, output_dir: Path | None, mirror: str | None, expected_sha256: str) -> tuple[Path, str]:
    """Download to a scratch file, verify, then move into place; returns (path, sha256)."""
    import torch  # here, not at the top: the other commands (and --help) start without torch

    from app.models.weights import WeightsError, check_digest, sha256_of, torchvision_weights

    weights = torchvision_weights(weights_name)
    if weights is None:
        raise CommandError(
            f"unknown torchvision weights {weights_name!r}; use imagenet, IMAGENET1K_V1 or IMAGENET1K_V2"
        )
    filename = os.path.basename(weights.url)
    url = f"{mirror.rstrip('/')}/{filename}" if mirror else weights.url
    directory = output_dir or Path(torch.hub.get_dir()) / "checkpoints"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            partial = Path(scratch) / filename
            torch.hub.download_url_to_file(url, str(partial), progress=sys.stderr.isatty())
            digest = sha256_of(partial)
            check_digest(partial, digest, expected_sha256, "weights")
            partial.replace(directory / filename)  # only a verified file ever reaches the cache
    except (WeightsError, OSError) as exc:
        raise CommandError(str(exc)) from None
    return directory / filename, digest


def fetch_url(url: str, output: Path, expected_sha256: str) -> tuple[Path, str]:
    """Any file, streamed to a scratch file beside `output` and hashed on the way; moved into place only if it
    matches. Needs no torch (the init container that runs it only fetches)."""
    import hashlib
    import urllib.request

    expected = expected_sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise UsageError("--url needs --sha256 with the file's full sha256 (64 hex digits)")
    digest = hashlib.sha256()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output.parent, prefix=f".{output.name}.", delete=False) as partial:
            try:
                with urllib.request.urlopen(url, timeout=60) as answer:
                    while chunk := answer.read(1 << 20):
                        digest.update(chunk)
                        partial.write(chunk)
                partial.close()
                if digest.hexdigest() != expected:
                    raise CommandError(
                        f"sha256 mismatch for {url}: expected {expected}, found {digest.hexdigest()}; nothing written"
                    )
                Path(partial.name).replace(output)
            finally:
                Path(partial.name).unlink(missing_ok=True)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot fetch {url} into {output}: {exc}") from None
    return output, digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    if (args.url is None) != (args.output is None):
        raise UsageError("--url and --output go together")
    if args.url is not None:
        path, digest = fetch_url(args.url, args.output, args.sha256)
        print(f"path={path}\nsha256={digest}")
        return OK
    path, digest = fetch(args.weights, args.output_dir, args.mirror, args.sha256)
    print(f"path={path}\nsha256={digest}")
    return OK
