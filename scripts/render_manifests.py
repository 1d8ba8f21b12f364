"""Render kubernetes/*.yaml, plain manifests for people without Helm, from the chart (never edited by hand).

python scripts/render_manifests.py          # rewrite kubernetes/
python scripts/render_manifests.py --check  # exit 1 when kubernetes/ differs from a fresh render
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "visionserve"
OUTPUT = ROOT / "kubernetes"
RELEASE = "visionserve"
NAMESPACE = "visionserve"
# file name -> values files (from the chart's ci/ folder) it is rendered with
VARIANTS = {"visionserve.yaml": [], "visionserve-monitoring.yaml": ["monitoring-values.yaml"]}
# Helm's install order, so `kubectl apply -f` creates what others refer to first.
KIND_ORDER = [
    "Namespace",
    "NetworkPolicy",
    "ServiceAccount",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "ServiceMonitor",
    "PrometheusRule",
]


class BlockDumper(yaml.SafeDumper):
    """Multi-line strings (config.yaml, dashboards) as literal blocks, readable in review."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


BlockDumper.add_representer(str, _str)


def load_values(files: list[str]) -> dict:
    values: dict = {}
    for name in files:
        values.update(yaml.safe_load((CHART / "ci" / name).read_text()) or {})
    return values


def render(values: dict) -> str:
    """The chart's objects (no helm test hooks, no NOTES) in install order, behind a Namespace."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    for path, text in sorted(rendered.items()):
        if "/tests/" in path or path.endswith("NOTES.txt"):
            continue
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    documents.sort(key=lambda doc: (KIND_ORDER.index(doc["kind"]), doc["metadata"]["name"]))
    header = (
        f"# Rendered from charts/visionserve by scripts/render_manifests.py (`make manifests`); do not edit.\n"
        f"# Release {RELEASE!r} in namespace {NAMESPACE!r}.\n"
    )
    return header + yaml.dump_all(documents, Dumper=BlockDumper, sort_keys=False, width=1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when kubernetes/ is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, values_files in VARIANTS.items():
        text = render(load_values(values_files))
        target = OUTPUT / name
        if args.check:
            if not target.is_file() or target.read_text() != text:
                stale.append(str(target))
        else:
            target.write_text(text)
            print(f"wrote {target}")
    if stale:
        print("stale (run make manifests): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
