"""GitHub Actions workflows: actionlint and zizmor clean, actions pinned by SHA, least privilege, real commands."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from app.cli import build_parser
from tests.helpers import ROOT, load_script, require_tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}$")


def _uses_lines(path: Path) -> list[str]:
    return [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines() if "uses:" in line]


def _lint(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool(tool), *args, *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_the_three_workflows_exist() -> None:
    assert {path.name for path in WORKFLOWS} == {"ci.yml", "release.yml", "deploy.yml"}


def test_actionlint_is_clean() -> None:
    """actionlint, with shellcheck on every `run:` script."""
    done = _lint("actionlint", "-shellcheck", require_tool("shellcheck"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_offline_is_clean() -> None:
    done = _lint("zizmor", "--offline")
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_online_audits_are_clean_where_github_answers() -> None:
    """The online audits (impostor commits behind a pinned SHA, ref confusion, known-vulnerable actions) ask
    GitHub's API: CI passes its token (GH_TOKEN); without one, here, only the offline audits run."""
    token = any(os.environ.get(name) for name in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"))
    if not token:  # a credential and the network, not a tool: a skip even under VISIONSERVE_REQUIRE_TOOLS=1
        pytest.skip("zizmor's online audits need GH_TOKEN (GitHub's API); offline here")
    done = _lint("zizmor")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    uses = _uses_lines(path)
    assert uses
    for line in uses:
        assert PINNED.match(line), line
    for line in uses:
        if line.startswith("aquasecurity/trivy-action@"):
            major, minor = (int(n) for n in line.split("# v")[1].split(".")[:2])
            assert (major, minor) >= (0, 35), "trivy-action tags before v0.35.0 were hijacked"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_timeouts_and_concurrency(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {}
    assert "group" in workflow["concurrency"]
    for name, job in workflow["jobs"].items():
        assert "permissions" in job and "timeout-minutes" in job, name
        contents = job["permissions"].get("contents")
        # only the release's publish job writes to the repository (the GitHub Release), and it checks out nothing
        if (path.name, name) == ("release.yml", "publish"):
            assert contents == "write" and not any("actions/checkout@" in str(s.get("uses")) for s in job["steps"])
        else:
            assert contents in ("read", None), name
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_untrusted_inputs_reach_shell_only_through_env(path: Path) -> None:
    for job in yaml.safe_load(path.read_text())["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")


def test_every_script_a_workflow_runs_exists_and_the_values_files_too() -> None:
    text = "\n".join(path.read_text() for path in WORKFLOWS)
    pattern = r"(?<![\w/])(?:scripts/[\w.-]+\.py|\.ci/run|charts/visionserve/ci/[\w.-]+\.yaml)"
    referenced = set(re.findall(pattern, text))
    assert {"scripts/rollout_check.py", ".ci/run"} <= referenced
    for relative in referenced:
        assert (ROOT / relative).is_file(), relative


def test_the_smoke_test_is_the_installed_visionserve_command_with_valid_arguments() -> None:
    """deploy.yml runs it itself; ci.yml through make kind-demo (below)."""
    runs = [step.get("run", "") for job in _jobs("deploy.yml") for step in job["steps"]]
    installs = next(
        i for i, run in enumerate(runs) if re.search(r"pip install --no-deps (--no-build-isolation )?\.$", run, re.M)
    )
    lines = [(i, line.strip()) for i, run in enumerate(runs) for line in run.splitlines()]
    commands = [(i, line) for i, line in lines if line.startswith("visionserve ")]
    assert any(line.startswith("visionserve smoke-test ") for _, line in commands)
    for index, line in commands:
        assert index > installs, line
        build_parser().parse_args(shlex.split(line)[1:])  # a wrong subcommand or flag exits 2 here


def test_the_kind_job_runs_the_readmes_kind_demo_with_arguments_the_script_takes() -> None:
    kind = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]["kind"]
    (run,) = [step["run"] for step in kind["steps"] if "make kind-demo" in step.get("run", "")]
    words = shlex.split(run.replace("$NAMESPACE", kind["env"]["NAMESPACE"]).replace("$RELEASE", kind["env"]["RELEASE"]))
    assert words[:2] == ["make", "kind-demo"]
    variables = dict(word.split("=", 1) for word in words[2:])
    assert variables["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    args = load_script("kind_demo").parse_args(shlex.split(variables["KIND_DEMO_ARGS"]))  # exits 2 on a wrong flag
    assert args.ci_checks and args.api_keys_secret and args.namespace == kind["env"]["NAMESPACE"]
    assert all((ROOT / path).is_file() for path in args.values)
    uses = [step.get("uses", "") for step in kind["steps"]]
    assert not any("build-push-action" in use for use in uses)  # the script builds the image: one recipe


def _jobs(name: str) -> list[dict]:
    return list(yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())["jobs"].values())


def test_deploy_waits_longer_than_the_startup_probe_and_rolls_back_on_failure() -> None:
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    values = yaml.safe_load((ROOT / "charts" / "visionserve" / "values.yaml").read_text())
    startup = values["probes"]["startup"]
    timeout_minutes = int(re.search(r"--rollback-on-failure --wait --timeout (\d+)m", deploy).group(1))
    assert timeout_minutes * 60 > startup["periodSeconds"] * startup["failureThreshold"]
    assert "environment: production" in deploy and "image.digest=" in deploy
