"""`visionserve serve` (and `python -m app`): gunicorn with uvicorn workers, configured from the settings."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import NoReturn

from app.api_keys import ApiKeysError, read_keys
from app.cli.exits import USAGE, UsageError
from app.settings import CONFIG_FILE_ENV, ENV_PREFIX, Settings, SettingsError, load_settings

CONF = Path(__file__).resolve().parents[1] / "gunicorn_conf.py"
EXITS = f"exit codes:\n  {USAGE}  a bad flag or setting: nothing was started\n  else gunicorn's (0 after a clean stop)"
FLAGS = ("host", "port", "workers")  # settings worth a flag; every other one is a variable or a config key


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="start the service (gunicorn + uvicorn workers)",
        description="Start the service: gunicorn supervising uvicorn workers, configured by defaults <- the YAML "
        f"file in {CONFIG_FILE_ENV} <- {ENV_PREFIX}* variables. Flags set those variables.",
        epilog=EXITS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for key in FLAGS:
        parser.add_argument(f"--{key}", metavar=key.upper(), help=_help(fields[key]))
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML file of settings (sets {CONFIG_FILE_ENV}); {ENV_PREFIX}* variables and flags override it",
    )
    parser.set_defaults(run=run)


def _help(setting: dataclasses.Field) -> str:
    meta = setting.metadata
    bounds = f", {meta['low']:g} to {meta['high']:g}" if meta["low"] is not None else ""
    return f"{meta['doc'].rstrip('.')} (default {setting.default}{bounds}; sets {ENV_PREFIX}{setting.name.upper()})"


def run(args: argparse.Namespace) -> NoReturn:
    """Turn flags into variables, refuse a bad configuration here (exit 2), then become gunicorn."""
    for key in FLAGS:
        value = getattr(args, key)
        if value is not None:
            os.environ[f"{ENV_PREFIX}{key.upper()}"] = value
    if args.config is not None:
        os.environ[CONFIG_FILE_ENV] = args.config
    try:
        settings = load_settings()
        if settings.api_keys_file:  # auth on: no keys, no start
            read_keys(Path(settings.api_keys_file))
    except (SettingsError, ApiKeysError) as exc:
        raise UsageError(str(exc)) from None
    # glibc's default of 8 arenas per core lets a threaded worker's memory creep up; 2 keeps it flat.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(CONF), "app.main:app_from_environment()"])
