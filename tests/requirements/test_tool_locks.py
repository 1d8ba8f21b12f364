"""The workflow jobs' hash locks (.github/deploy/requirements.lock, .github/release/requirements.lock) are pyproject's
`deploy` and `release` dependency groups, every pin exact and hashed, written by scripts/lock_requirements.py (its
header is the command, so a bot can rerun it)."""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT, load_script
from tests.requirements.test_locks import parse_lock

generator = load_script("lock_requirements")
GROUPS = sorted(generator.TOOL_LOCKS)


def _group(group: str) -> dict[str, Requirement]:
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    return {canonicalize_name(r.name): r for r in map(Requirement, groups[group.split(":")[1]])}


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_requirement_is_pinned_in_range_and_everything_is_hashed(group: str) -> None:
    pins = parse_lock((ROOT / generator.TOOL_LOCKS[group]).read_text())
    root_via = f"visionserve ({group})"
    for name, requirement in _group(group).items():
        assert name in pins, f"{name} is in the {group} group but not locked: run make lock"
        assert requirement.specifier.contains(pins[name].version), f"{name}=={pins[name].version} vs {requirement}"
        assert root_via in pins[name].via, name
    assert [name for name, pin in pins.items() if not pin.hashes] == []
    assert {name for name, pin in pins.items() if root_via in pin.via} == set(_group(group))


@pytest.mark.parametrize("group", GROUPS)
def test_the_header_is_the_generators_command(group: str) -> None:
    command = generator.tool_compile_command("uv", group)
    expected = [part for part in command if not part.startswith(("http", "--index-url"))]
    header = (ROOT / generator.TOOL_LOCKS[group]).read_text().splitlines()[1]
    assert header.removeprefix("#").strip() == " ".join(expected)


def test_the_deploy_tools_are_the_ones_the_rollout_check_and_smoke_test_import() -> None:
    assert {"kubernetes", "pillow", "pyyaml", "setuptools"} == set(_group(generator.DEPLOY_GROUP))


def test_the_release_tool_is_uv_alone_the_one_that_writes_the_image_locks() -> None:
    assert set(_group(generator.RELEASE_GROUP)) == {"uv"}
    assert set(parse_lock((ROOT / generator.RELEASE_LOCK).read_text())) == {"uv"}  # a binary wheel, no dependencies
