"""The docs tell the truth about the tree: the layout and the scripts table (docs/internals.md) match the files, and
every relative link of the README and docs/ points at a file that exists."""

from __future__ import annotations

import re

from tests.helpers import ROOT

INTERNALS = (ROOT / "docs" / "internals.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", INTERNALS, re.MULTILINE | re.DOTALL)
    assert match, f"docs/internals.md has no '## {title}' section"
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


def test_every_relative_link_of_the_docs_points_at_a_file() -> None:
    documents = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    broken = []
    for document in documents:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if not target.startswith(("http://", "https://", "mailto:")) and not (document.parent / target).exists():
                broken.append(f"{document.relative_to(ROOT)} -> {target}")
    assert not broken


def test_the_readme_first_screen_gets_a_first_answer_in_three_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", quick_start, re.DOTALL)
    assert block
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make run-random", ".venv/bin/visionserve predict --sample", ".venv/bin/visionserve smoke-test"]
    assert "Python 3.11" in quick_start.split("```")[0] and "TORCH_INDEX=" in quick_start.split("```")[0]
