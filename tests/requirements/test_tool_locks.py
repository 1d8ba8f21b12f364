"""The deploy job's hash lock (.github/deploy/requirements.lock) is pyproject's `deploy` dependency group, every
pin exact and hashed, written by scripts/lock_requirements.py (its header is the command, so a bot can rerun it)."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT, load_script
from tests.requirements.test_locks import parse_lock

generator = load_script("lock_requirements")
LOCK = ROOT / generator.DEPLOY_LOCK
ROOT_VIA = "visionserve (pyproject.toml:deploy)"


def _group() -> dict[str, Requirement]:
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    return {canonicalize_name(r.name): r for r in map(Requirement, groups["deploy"])}


def test_every_group_requirement_is_pinned_in_range_and_everything_is_hashed() -> None:
    pins = parse_lock(LOCK.read_text())
    for name, requirement in _group().items():
        assert name in pins, f"{name} is in the deploy group but not locked: run make lock"
        assert requirement.specifier.contains(pins[name].version), f"{name}=={pins[name].version} vs {requirement}"
        assert ROOT_VIA in pins[name].via, name
    assert [name for name, pin in pins.items() if not pin.hashes] == []
    assert {name for name, pin in pins.items() if ROOT_VIA in pin.via} == set(_group())


def test_the_header_is_the_generators_command() -> None:
    expected = [part for part in generator.deploy_compile_command("uv") if not part.startswith(("http", "--index-url"))]
    assert LOCK.read_text().splitlines()[1].removeprefix("#").strip() == " ".join(expected)


def test_the_deploy_tools_are_the_ones_the_rollout_check_and_smoke_test_import() -> None:
    assert {"kubernetes", "pillow", "pyyaml", "setuptools"} == set(_group())
