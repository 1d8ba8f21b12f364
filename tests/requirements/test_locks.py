"""The image's hash locks agree with pyproject.toml, and the Dockerfile installs exactly them.

A lock (scripts/lock_requirements.py) pins every package the image installs, each with the sha256 of every file
published for that version; uv's `# via` notes say why each is there. Changing a dependency in pyproject.toml
without `make lock` fails here: a dependency missing from the lock, a pin outside the declared range, a pin the
project no longer asks for, or a build requirement out of step.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT, load_script

parse_lock = load_script("lock_agreement").parse_lock
LOCKS = sorted((ROOT / "requirements").glob("*.lock"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = "visionserve (pyproject.toml)"
BUILD_IN = "-r requirements/build.in"


def _declared() -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, PYPROJECT["project"]["dependencies"])}


def _build_requires() -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, PYPROJECT["build-system"]["requires"])}


def test_the_default_lock_exists_and_every_lock_is_named_by_the_generator() -> None:
    generator = load_script("lock_requirements")
    known = {ROOT / output for output, _ in generator.LOCKS.values()}
    assert ROOT / "requirements" / "image.lock" in LOCKS
    assert set(LOCKS) <= known, "a lock no command in scripts/lock_requirements.py writes"


def test_build_in_is_what_pyproject_builds_with() -> None:
    generator = load_script("lock_requirements")
    assert (ROOT / "requirements" / "build.in").read_text() == generator.build_requirements()


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_declared_dependency_is_locked_within_its_range(lock: Path) -> None:
    pins = parse_lock(lock.read_text())
    for name, requirement in {**_declared(), **_build_requires()}.items():
        assert name in pins, f"{name} is declared in pyproject.toml but not locked in {lock.name}: run make lock"
        assert requirement.specifier.contains(pins[name].version, prereleases=True), (
            f"{lock.name} pins {name}=={pins[name].version}, outside pyproject's {requirement}: run make lock"
        )


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_the_lock_asks_for_nothing_the_project_does_not(lock: Path) -> None:
    """The roots uv recorded are exactly pyproject's dependencies and build requirements; all else hangs off them."""
    pins = parse_lock(lock.read_text())
    roots = {name for name, pin in pins.items() if pin.via & {PROJECT, BUILD_IN}}
    assert roots == set(_declared()) | set(_build_requires()), "stale lock: run make lock"
    for name, pin in pins.items():
        parents = {canonicalize_name(v) for v in pin.via - {PROJECT, BUILD_IN}}
        assert pin.via and parents <= set(pins), f"{name} is locked for {pin.via}, not in the lock"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_pin_is_exact_and_hashed(lock: Path) -> None:
    pins = parse_lock(lock.read_text())
    assert len(pins) > len(_declared())
    assert [name for name, pin in pins.items() if not pin.hashes] == []


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_the_header_is_the_generators_command_so_a_bot_can_rerun_it(lock: Path) -> None:
    generator = load_script("lock_requirements")
    torch = next(name for name, (output, _) in generator.LOCKS.items() if ROOT / output == lock)
    expected = " ".join(part for part in generator.compile_command("uv", torch) if not _is_index_option(part))
    header = lock.read_text().splitlines()[1].removeprefix("#").strip()
    assert header == expected


def _is_index_option(part: str) -> bool:
    """uv leaves index options out of the header it writes (they are not emitted into the file either)."""
    return part.startswith("http") or part in ("--index-url", "--extra-index-url")


def test_the_parser_refuses_what_it_does_not_understand() -> None:
    with pytest.raises(AssertionError):
        parse_lock("-e .\n")
    assert parse_lock("a==1 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via b\n")["a"].via == {"b"}
