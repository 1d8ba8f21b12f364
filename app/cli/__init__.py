"""The `visionserve` command: serve, fetch-weights, smoke-test, predict and models, one module each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app import __version__
from app.cli import fetch_weights, models, predict, serve, smoke_test
from app.cli.exits import EXIT_CODES, INTERRUPTED, CommandError

SUBCOMMANDS = (serve, fetch_weights, smoke_test, predict, models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visionserve",
        description="ResNet-50 image classification (ImageNet-1k and CIFAR-10 heads): the service and its tools.",
        epilog=f"{EXIT_CODES}\n\n`visionserve COMMAND --help` describes each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"visionserve {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; its errors become one line on stderr and an exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as exc:
        print(f"visionserve {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return INTERRUPTED
