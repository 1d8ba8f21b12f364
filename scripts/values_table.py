"""The chart README's values table, made from values.yaml and its `# --` comments (one source).

python scripts/values_table.py           # rewrite the table in charts/visionserve/README.md
python scripts/values_table.py --check   # exit 1 when the chart README's table is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "charts" / "visionserve" / "values.yaml"
README = ROOT / "charts" / "visionserve" / "README.md"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"
KEY = re.compile(r"^( *)([A-Za-z][\w.-]*):")


def documented_keys(text: str) -> list[tuple[str, str]]:
    """(dotted.key, description) for every key preceded by a `# --` comment (continuation lines joined)."""
    rows: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and comment:
            comment.append(stripped[1:].strip())
            continue
        match = KEY.match(line)
        if match:
            indent = len(match.group(1))
            path = [(i, k) for i, k in path if i < indent] + [(indent, match.group(2))]
            if comment:
                rows.append((".".join(k for _, k in path), " ".join(comment)))
        comment = []
    return rows


def lookup(values: dict, dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def table() -> str:
    text = VALUES.read_text()
    values = yaml.safe_load(text)
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for key, description in documented_keys(text):
        default = lookup(values, key)
        shown = "see values.yaml" if isinstance(default, dict) and default else json.dumps(default)
        lines.append(f"| `{key}` | `{shown}` | {description.replace('|', '/')} |")
    return "\n".join(lines)


def with_table(readme: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + table() + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the chart README's table is stale")
    args = parser.parse_args(argv)
    readme = README.read_text()
    updated = with_table(readme)
    if args.check:
        if updated != readme:
            print(
                f"{README.relative_to(ROOT)} values table is stale: run python scripts/values_table.py", file=sys.stderr
            )
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
