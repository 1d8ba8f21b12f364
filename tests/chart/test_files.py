"""The chart carries real copies of monitoring/, never links out of itself, and ships them when packaged."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import helm_python as helm

from tests.chart.rendering import CHART, one, render
from tests.helpers import ROOT, load_script, run_script

chart_files = load_script("chart_files")
MONITORING = ROOT / "monitoring"


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_files_are_byte_equal_copies_of_monitoring() -> None:
    expected = {"alerts.yaml": (MONITORING / "alerts.yaml").read_bytes()}
    expected |= {f"dashboards/{p.name}": p.read_bytes() for p in (MONITORING / "dashboards").glob("*.json")}
    assert len(expected) > 1
    assert _tree(CHART / "files") == expected


def test_nothing_under_charts_is_a_symlink() -> None:
    links = [
        os.path.join(folder, name)
        for folder, subfolders, files in os.walk(ROOT / "charts")
        for name in subfolders + files
        if os.path.islink(os.path.join(folder, name))
    ]
    assert links == []


def test_the_copies_are_current_by_the_generators_check() -> None:
    done = run_script("scripts/chart_files.py", "--check")
    assert done.returncode == 0, done.stderr


def test_the_check_reports_changed_missing_extra_and_linked_files(tmp_path: Path) -> None:
    source, target = tmp_path / "monitoring", tmp_path / "files"
    (source / "dashboards").mkdir(parents=True)
    (source / "alerts.yaml").write_text("groups: []\n")
    (source / "dashboards" / "a.json").write_text("{}\n")
    (source / "dashboards" / "b.json").write_text("{}\n")
    chart_files.write(source, target)
    assert chart_files.drift(source, target) == []
    (target / "alerts.yaml").write_text("groups: [] \n")
    (target / "dashboards" / "b.json").unlink()
    (target / "dashboards" / "c.json").write_text("{}\n")
    (target / "dashboards" / "a.json").unlink()
    (target / "dashboards" / "a.json").symlink_to(source / "dashboards" / "a.json")
    assert chart_files.drift(source, target) == [
        "missing: dashboards/b.json",
        "extra: dashboards/c.json",
        "changed: alerts.yaml",
        "changed: dashboards/a.json",
    ]
    chart_files.write(source, target)
    assert chart_files.drift(source, target) == [] and not (target / "dashboards" / "a.json").is_symlink()


def test_write_replaces_a_linked_folder_without_touching_its_target(tmp_path: Path) -> None:
    source, target = tmp_path / "monitoring", tmp_path / "files"
    (source / "dashboards").mkdir(parents=True)
    (source / "alerts.yaml").write_text("groups: []\n")
    (source / "dashboards" / "a.json").write_text("{}\n")
    target.mkdir()
    (target / "dashboards").symlink_to(source / "dashboards")
    assert "extra: dashboards" in chart_files.drift(source, target)
    chart_files.write(source, target)
    assert chart_files.drift(source, target) == [] and (source / "dashboards" / "a.json").is_file()


def test_the_packaged_chart_carries_the_files_and_renders_them(tmp_path: Path) -> None:
    """What `helm package` (and so an OCI push, or Argo CD from Git) takes: .helmignore leaves files/ in."""
    archive = Path(helm.package(CHART, destination=tmp_path))
    with tarfile.open(archive) as tar:
        packaged = {m.name.removeprefix("visionserve/"): m for m in tar.getmembers() if m.isfile()}
        assert {name: tar.extractfile(m).read() for name, m in packaged.items() if name.startswith("files/")} == {
            f"files/{name}": data for name, data in _tree(CHART / "files").items()
        }
    tar_dir = tmp_path / "unpacked"
    helm.expand(tar_dir, archive)
    values = {"monitoring": {"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True}}}
    packaged_render = render(values, chart_dir=tar_dir / "visionserve")
    assert one(packaged_render, "PrometheusRule")["spec"]["groups"]
    assert packaged_render == render(values)
