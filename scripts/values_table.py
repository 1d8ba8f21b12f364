"""The chart README's generated parts, from values.yaml (one source): the values table, made from its `# --`
comments, and what the defaults pull and cost.

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
CHART_YAML = ROOT / "charts" / "visionserve" / "Chart.yaml"
KIND_DEMO_VALUES = ROOT / "charts" / "visionserve" / "ci" / "kind-demo-values.yaml"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"
DEFAULTS_BEGIN, DEFAULTS_END = "<!-- defaults:begin -->", "<!-- defaults:end -->"
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


def _quantity_gib(memory: str) -> float:
    units = {"Ki": 1 / 1024**2, "Mi": 1 / 1024, "Gi": 1.0, "Ti": 1024.0}
    suffix = memory[-2:]
    return float(memory[:-2]) * units[suffix] if suffix in units else float(memory) / 1024**3


def _cpu(cpu: str) -> float:
    text = str(cpu)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def defaults() -> str:
    """Which image the chart pulls by default, and the CPU and memory its default replicas ask for."""
    values = yaml.safe_load(VALUES.read_text())
    app_version = yaml.safe_load(CHART_YAML.read_text())["appVersion"]
    image = values["image"]
    tag = image["tag"] or app_version
    scaling = values["autoscaling"]
    low, high = (
        (scaling["minReplicas"], scaling["maxReplicas"]) if scaling["enabled"] else (values["replicaCount"],) * 2
    )
    requests, limits = values["resources"]["requests"], values["resources"]["limits"]
    demo = yaml.safe_load(KIND_DEMO_VALUES.read_text())
    demo_requests = demo["resources"]["requests"]
    pods = f"{low} to {high} pods (the HPA)" if scaling["enabled"] else f"{low} pods"
    return "\n".join(
        [
            f"- **Image**: `{image['repository']}:{tag}` (the chart's appVersion). `.github/workflows/release.yml` "
            "publishes the image to `ghcr.io/<owner>/<repository>` of the GitHub repository it runs in, when a "
            "`vX.Y.Z` tag is pushed; until such a release has run, nothing is published: build the image yourself "
            "(`make kind-demo` does, for kind) and set `image.repository` and `image.tag`.",
            f"- **Cost**: {pods}, each requesting {requests['cpu']} CPU and {requests['memory']} "
            f"({_limits_text(limits)}): at least "
            f"{_cpu(requests['cpu']) * low:g} CPU and {_quantity_gib(requests['memory']) * low:g} GiB requested, "
            f"{_cpu(requests['cpu']) * high:g} CPU and {_quantity_gib(requests['memory']) * high:g} GiB at the most. "
            "A laptop cluster cannot schedule that: `ci/kind-demo-values.yaml` asks "
            f"{demo['replicaCount']} pod of {demo_requests['cpu']} CPU and {demo_requests['memory']} (docs/kind.md).",
        ]
    )


def _limits_text(limits: dict) -> str:
    cpu = f"limit {limits['cpu']} CPU" if "cpu" in limits else "no CPU limit"
    return f"{cpu}, memory limit {limits['memory']}" if "memory" in limits else cpu


def _between(readme: str, begin: str, end: str, body: str) -> str:
    start, stop = readme.index(begin) + len(begin), readme.index(end)
    return readme[:start] + "\n" + body + "\n" + readme[stop:]


def with_table(readme: str) -> str:
    return _between(_between(readme, BEGIN, END, table()), DEFAULTS_BEGIN, DEFAULTS_END, defaults())


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
