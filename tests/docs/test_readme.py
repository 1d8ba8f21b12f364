"""The README tells the truth about the tree: its layout section and its scripts table match the files."""

from __future__ import annotations

import re

from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _layout_paths() -> set[str]:
    """Paths named in the layout block: a top-level folder, or an indented entry under the last folder seen."""
    block = re.search(r"```text\n(.*?)```", _section("Layout"), re.DOTALL)
    assert block, "the Layout section has no ```text block"
    paths: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in block.group(1).splitlines():
        name = line.strip().split("  ")[0].strip()
        if not name:
            continue
        indent = len(line) - len(line.lstrip())
        while parents and parents[-1][0] >= indent:
            parents.pop()
        for part in name.split(", "):
            full = "".join(parent for _, parent in parents) + part
            paths.add(full.rstrip("/"))
        if name.endswith("/"):
            parents.append((indent, name))
    return paths


def test_every_path_in_the_layout_exists() -> None:
    missing = sorted(path for path in _layout_paths() if not (ROOT / path).exists())
    assert not missing


def test_every_module_and_package_of_the_service_is_in_the_layout() -> None:
    named = _layout_paths()
    modules = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "app").glob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    }
    packages = {str(path.relative_to(ROOT)) for path in (ROOT / "app").iterdir() if (path / "__init__.py").is_file()}
    assert sorted((modules | packages) - named) == []


def test_the_scripts_table_names_every_script_once() -> None:
    listed = re.findall(r"^\| `scripts/([\w.]+)` \|", _section("Scripts"), re.MULTILINE)
    assert sorted(listed) == sorted(path.name for path in (ROOT / "scripts").glob("*.py"))
