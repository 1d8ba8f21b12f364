"""scripts/release_version.py: the tag is the version, stamped into the chart (whose default image tag follows),
pyproject.toml and the app; a published version is refused."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.chart.rendering import one, render
from tests.helpers import ROOT, load_script

rv = load_script("release_version")


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v1.4.0", "1.4.0"), ("v0.1.0", "0.1.0"), ("v2.0.0-rc.1", "2.0.0-rc.1"), ("v10.20.30-beta-2", "10.20.30-beta-2")],
)
def test_the_version_is_the_tag_without_its_v(tag: str, version: str) -> None:
    assert rv.version_from_tag(tag) == version


@pytest.mark.parametrize(
    "tag", ["1.4.0", "v1.4", "v1.4.0.1", "v01.4.0", "v1.4.0+build.5", "v1.4.0-", "v1.4.0-rc..1", "vX.Y.Z", "v1.4.0 "]
)
def test_a_tag_that_is_not_semver_is_refused(tag: str) -> None:
    with pytest.raises(ValueError, match="is not v<major>"):
        rv.version_from_tag(tag)


def test_the_repository_states_one_version_in_every_file_the_release_stamps() -> None:
    chart = yaml.safe_load((ROOT / "charts/visionserve/Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    app = (ROOT / "app/__init__.py").read_text()
    assert chart["version"] == chart["appVersion"] == project
    assert f'__version__ = "{project}"' in app


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what the release stamps: the chart, pyproject.toml and app/__init__.py."""
    shutil.copytree(ROOT / "charts" / "visionserve", tmp_path / "charts" / "visionserve")
    (tmp_path / "app").mkdir()
    shutil.copy(ROOT / "app" / "__init__.py", tmp_path / "app" / "__init__.py")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize("version", ["1.4.0", "2.0.0-rc.1"])
def test_stamping_sets_the_chart_version_app_version_and_default_image_tag(checkout: Path, version: str) -> None:
    written = rv.stamp(version, root=checkout)
    assert {path.relative_to(checkout).as_posix() for path in written} == set(rv.VERSION_LINES)
    chart_yaml = yaml.safe_load((checkout / "charts/visionserve/Chart.yaml").read_text())
    assert (chart_yaml["version"], chart_yaml["appVersion"]) == (version, version)
    assert tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["version"] == version
    assert f'__version__ = "{version}"\n' in (checkout / "app/__init__.py").read_text()
    documents = render({}, chart_dir=checkout / "charts" / "visionserve")
    deployment = one(documents, "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/visionserve/visionserve:{version}"
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == version and labels["helm.sh/chart"] == f"visionserve-{version}"


def test_stamping_twice_is_the_same_as_once(checkout: Path) -> None:
    rv.stamp("1.4.0", root=checkout)
    once = {path: path.read_text() for path in rv.stamp("1.4.0", root=checkout)}
    assert {path: path.read_text() for path in rv.stamp("1.4.0", root=checkout)} == once


def test_stamping_refuses_a_file_that_does_not_state_the_version_once(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "', 'version_ = "'))
    with pytest.raises(ValueError, match=r"pyproject.toml: .* matched 0 lines"):
        rv.stamp("1.4.0", root=checkout)
    with pytest.raises(ValueError, match="is not v<major>"):
        rv.stamp("1.4", root=checkout)


@pytest.mark.parametrize(
    ("returncode", "output", "expected"),
    [
        (0, '{"schemaVersion": 2}', rv.Presence.PRESENT),
        (1, "ERROR: ghcr.io/o/visionserve:1.4.0: not found", rv.Presence.ABSENT),
        (1, "ERROR: MANIFEST_UNKNOWN: manifest unknown", rv.Presence.ABSENT),
        (1, "ERROR: NAME_UNKNOWN: repository name not known to registry; Name Unknown", rv.Presence.ABSENT),
        (1, "ERROR: failed to authorize: 401 Unauthorized", rv.Presence.UNKNOWN),
        (1, "dial tcp: lookup ghcr.io: no such host", rv.Presence.UNKNOWN),
    ],
)
def test_the_registrys_answer_is_read_fail_closed(returncode: int, output: str, expected: object) -> None:
    assert rv.presence(returncode, output) is expected


def test_absent_exits_0_only_when_every_reference_is_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    answers = {
        "ghcr.io/o/visionserve:1.4.0": (1, "not found"),
        "ghcr.io/o/visionserve:1.4.0-gpu": (1, "not found"),
        "ghcr.io/o/charts/visionserve:1.4.0": (0, "{}"),
        "ghcr.io/o/charts/visionserve:1.5.0": (1, "unexpected status: 503 Service Unavailable"),
    }
    asked: list[str] = []

    def inspect(reference: str) -> tuple[int, str]:
        asked.append(reference)
        return answers[reference]

    fresh = ["ghcr.io/o/visionserve:1.4.0", "ghcr.io/o/visionserve:1.4.0-gpu"]
    assert rv.main(["absent", *fresh], inspect=inspect) == 0
    assert asked == fresh
    assert "not published yet" in capsys.readouterr().out
    assert rv.main(["absent", *fresh, "ghcr.io/o/charts/visionserve:1.4.0"], inspect=inspect) == 1
    assert "::error::ghcr.io/o/charts/visionserve:1.4.0 is already published" in capsys.readouterr().err
    assert rv.main(["absent", "ghcr.io/o/charts/visionserve:1.5.0"], inspect=inspect) == 1
    assert "503 Service Unavailable" in capsys.readouterr().err


def test_the_command_line_prints_the_output_line_and_refuses_bad_tags(capsys: pytest.CaptureFixture[str]) -> None:
    assert rv.main(["version", "v1.4.0"]) == 0
    assert capsys.readouterr().out == "version=1.4.0\n"
    assert rv.main(["version", "main"]) == 1
    assert capsys.readouterr().err.startswith("::error::tag 'main' is not v<major>")
