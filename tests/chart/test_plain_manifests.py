"""kubernetes/ holds the chart rendered for people without Helm; it never drifts from the chart."""

from __future__ import annotations

import kubernetes_validate
import yaml

from tests.helpers import ROOT, run_script


def test_plain_manifests_equal_a_fresh_render() -> None:
    done = run_script("scripts/render_manifests.py", "--check")
    assert done.returncode == 0, done.stderr


def test_plain_manifests_are_valid_kubernetes_and_hold_no_helm_hooks() -> None:
    for name in ("visionserve.yaml", "visionserve-monitoring.yaml"):
        documents = list(yaml.safe_load_all((ROOT / "kubernetes" / name).read_text()))
        assert documents[0]["kind"] == "Namespace"
        assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= {d["kind"] for d in documents}
        for doc in documents:
            assert "helm.sh/hook" not in doc["metadata"].get("annotations", {})
            if doc["apiVersion"] != "monitoring.coreos.com/v1":
                kubernetes_validate.validate(doc, "1.37.0", strict=True)
