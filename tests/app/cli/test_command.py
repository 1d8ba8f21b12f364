"""The `visionserve` command itself: its help, its exit codes, and `serve` (alias `python -m app`) starting for real."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from tests.app.cli.command import visionserve
from tests.harness.local_server import LocalServer
from tests.helpers import ROOT

SUBCOMMANDS = ("serve", "fetch-weights", "smoke-test", "predict")


def test_the_console_script_lists_every_subcommand_and_the_exit_codes() -> None:
    script = Path(sys.executable).with_name("visionserve")  # installed by [project.scripts]
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for name in SUBCOMMANDS:
        assert f"\n    {name}" in done.stdout
    assert "exit codes:" in done.stdout and "130" in done.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name: str) -> None:
    done = visionserve(name, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: visionserve {name}") and "exit codes:" in done.stdout


def test_serve_help_shows_the_settings_defaults_and_starts_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: visionserve serve")
    assert "default 8080, 1 to 65535; sets VISIONSERVE_PORT" in " ".join(done.stdout.split())  # from app.settings
    assert "gunicorn" not in done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("frobnicate",), "invalid choice"),
        ((), "required: COMMAND"),
        (("serve", "--port", "0"), "port=0 is out of range; accepted: 1 to 65535"),
        (("serve", "--workers", "two"), "workers from VISIONSERVE_WORKERS: 'two' is not a valid int"),
        (("serve", "--config", "/nonexistent/visionserve.yaml"), "cannot read config file"),
        (("predict", "--url", "127.0.0.1:8080", "x.jpg"), "is not an http:// or https:// URL"),
        (("predict", "--top-k", "many", "x.jpg"), "invalid int value"),
        (("predict",), "name at least one IMAGE"),
        (("smoke-test", "--timeout", "soon"), "invalid float value"),
    ],
)
def test_usage_and_configuration_errors_exit_2_before_anything_starts(args: tuple[str, ...], says: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISIONSERVE_") and k != "CONFIG_FILE"}
    done = visionserve(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_the_client_commands_start_without_torch() -> None:
    """CI installs the package without its dependencies to run smoke-test and predict from a runner."""
    code = "import sys, app.cli; app.cli.build_parser(); print(sorted(m for m in sys.modules if m.startswith('torch')))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.service
@pytest.mark.slow
def test_python_m_app_serves_with_the_flags_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "visionserve.yaml"  # its host would not bind: the --host flag must win
    config.write_text("host: 192.0.2.1\nweights: random\ncifar_head: none\ntorch_threads: 1\nworkers: 2\n")
    local = LocalServer()
    env = local.environment()
    del env["VISIONSERVE_HOST"], env["VISIONSERVE_PORT"]
    handle, log = tempfile.mkstemp(prefix="visionserve-", suffix=".log")
    local.log_path = Path(log)
    flags = ["--host", "127.0.0.1", "--port", str(local.port), "--workers", "1", "--config", str(config)]
    local.process = subprocess.Popen(
        [sys.executable, "-m", "app", *flags], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )
    os.close(handle)
    try:
        local.wait_ready()
        described = requests.get(f"{local.url}/v1/models", timeout=10).json()
        assert described["model"]["random_weights"] is True
        assert described["heads"]["cifar10"]["available"] is False
        assert local.log().count("Booting worker") == 1  # --workers 1 over the file's 2
        assert local.stop() == 0
    finally:
        local.stop()
        local.remove_log()
