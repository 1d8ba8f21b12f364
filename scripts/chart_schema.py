"""Write charts/visionserve/values.schema.json; its `config` part is derived from app/settings.py.

python scripts/chart_schema.py          # rewrite the schema
python scripts/chart_schema.py --check  # exit 1 when the committed schema differs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "charts" / "visionserve" / "values.schema.json"
ALERTS = ROOT / "monitoring" / "alerts.yaml"
# Settings the chart sets itself (from gpu, resources, containerPort, shutdown, metrics, auth): not user config.
# All are in the ConfigMap's config.yaml but cpu_request_millicores, a variable from the downward API.
CHART_OWNED = (
    "host",
    "port",
    "workers",
    "device",
    "torch_threads",
    "drain_seconds",
    "graceful_timeout",
    "metrics_port",
    "api_keys_file",
    "cache_max_entries",
    "cache_max_bytes",
    "cpu_request_millicores",
)


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """A closed object: unknown keys are errors (typos fail at install, not at 3 a.m.)."""
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def integer(description: str, minimum: int | None = None, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def boolean(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


def free_map(description: str, values: str = "string") -> dict[str, Any]:
    return {"type": "object", "description": description, "additionalProperties": {"type": values}}


def free_list(description: str) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": {"type": "object"}}


def templated_list(description: str) -> dict[str, Any]:
    """A list of Kubernetes objects, or a string that tpl renders into one."""
    return {"type": ["array", "string"], "description": description, "items": {"type": "object"}}


def templated_map(description: str) -> dict[str, Any]:
    """A map, or a string that tpl renders into one."""
    return {"type": ["object", "string"], "description": description}


def alert_names(path: Path = ALERTS) -> list[str]:
    """The alerts of monitoring/alerts.yaml: the keys the per-alert values accept (a typo fails at install)."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return sorted(rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule)


def per_alert(description: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "propertyNames": {"enum": alert_names()},
        "additionalProperties": value,
    }


def scrape(kind: str) -> dict[str, Any]:
    return obj(
        {
            "enabled": boolean(f"Create a {kind}."),
            "interval": string("Scrape interval.", pattern="^[0-9]+(ms|s|m|h)$"),
            "scrapeTimeout": string("Scrape timeout.", pattern="^[0-9]+(ms|s|m|h)$"),
            "additionalLabels": free_map("Extra labels (release: <kube-prometheus-stack release>)."),
        }
    )


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema, also accepting null (Helm deletes a key set to null, so the template drops it)."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    widened = {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        widened["enum"] = [*schema["enum"], None]
    return widened


def security_context(description: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes security context whose every field may be set to null to drop it (OpenShift's SCC sets UIDs)."""
    return obj({name: nullable(schema) for name, schema in fields.items()}, description=description)


SECCOMP_PROFILE = obj(
    {
        "type": string("Seccomp profile type.", enum=["RuntimeDefault", "Localhost", "Unconfined"]),
        "localhostProfile": string("Profile file on the node, for type Localhost."),
    },
    ("type",),
)
# The fields both a pod's and a container's securityContext have.
RUN_AS = {
    "runAsNonRoot": boolean("Refuse to start as root."),
    "runAsUser": integer("UID; null leaves it to the platform.", 0),
    "runAsGroup": integer("Primary GID; null leaves it to the platform.", 0),
    "seccompProfile": SECCOMP_PROFILE,
    "seLinuxOptions": free_map("SELinux level, role, type and user."),
    "appArmorProfile": {"type": "object", "description": "AppArmor profile."},
}
POD_SECURITY_CONTEXT = security_context(
    "Pod securityContext of every pod of the chart; a field set to null is dropped.",
    {
        **RUN_AS,
        "fsGroup": integer("Group owning mounted volumes; null leaves it to the platform.", 0),
        "fsGroupChangePolicy": string("When volume ownership changes.", enum=["Always", "OnRootMismatch"]),
        "supplementalGroups": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "sysctls": free_list("Namespaced sysctls."),
    },
)
CONTAINER_SECURITY_CONTEXT = security_context(
    "securityContext of every container of the chart; a field set to null is dropped.",
    {
        **RUN_AS,
        "allowPrivilegeEscalation": boolean("Allow setuid gains."),
        "readOnlyRootFilesystem": boolean("Read-only root file system."),
        "privileged": boolean("Privileged container."),
        "capabilities": obj(
            {
                "add": {"type": "array", "items": {"type": "string"}},
                "drop": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "procMount": string("proc mount type.", enum=["Default", "Unmasked"]),
    },
)

QUANTITY = {"type": ["string", "integer", "number"], "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"}
DNS_SUBDOMAIN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$"  # a Secret's name, or empty
SECRET_KEY = r"^([-._a-zA-Z0-9]+)?$"  # a Secret's data key, or empty
CPU = {"type": ["string", "integer", "number"], "pattern": r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$"}
PULL_SECRETS = {"type": "array", "items": obj({"name": {"type": "string", "minLength": 1}}, ("name",))}
SCALING_METRICS = ("visionserve_requests_in_flight", "visionserve_queue_depth")


def setting(name: str, description: str) -> dict[str, Any]:
    """An integer value of the chart that becomes setting `name`: the service's own bounds."""
    meta = next(field.metadata for field in dataclasses.fields(Settings) if field.name == name)
    return integer(description, meta["low"], meta["high"])


def config_schema() -> dict[str, Any]:
    """The service's settings, with the same types and bounds the service enforces."""
    properties: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        if field.name in CHART_OWNED:
            continue
        meta = field.metadata
        kind = {"int": "integer", "float": "number", "str": "string"}[
            field.type if isinstance(field.type, str) else field.type.__name__
        ]
        prop: dict[str, Any] = {"type": kind, "description": meta["doc"]}
        if meta["choices"]:
            prop["enum"] = list(meta["choices"])
        if meta["low"] is not None:
            prop["minimum"] = meta["low"]
            prop["maximum"] = meta["high"]
        properties[field.name] = prop
    properties["weights"]["minLength"] = 1
    properties["weights_sha256"]["pattern"] = "^([0-9a-fA-F]{64})?$"
    properties["cifar_head_sha256"]["pattern"] = "^([0-9a-fA-F]{64})?$"
    return obj(
        properties,
        description="The service's settings (app/settings.py); the chart owns " + ", ".join(CHART_OWNED) + ".",
    )


def values_schema() -> dict[str, Any]:
    probe = obj(
        {
            "periodSeconds": integer("Seconds between checks.", 1, 300),
            "failureThreshold": integer("Failures before acting.", 1, 1000),
        }
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "visionserve chart values",
        **obj(
            {
                "image": obj(
                    {
                        "repository": string("Image repository.", minLength=1),
                        "tag": string(
                            "Tag; empty means appVersion; never latest.",
                            pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$",
                            **{"not": {"const": "latest"}},
                        ),
                        "digest": string("sha256 digest.", pattern=r"^(sha256:[0-9a-f]{64})?$"),
                        "pullPolicy": string("Pull policy.", enum=["Always", "IfNotPresent", "Never"]),
                    },
                    ("repository", "tag", "digest", "pullPolicy"),
                ),
                "global": {
                    "type": "object",
                    "description": "Values shared by a parent chart; imageRegistry and imagePullSecrets are read.",
                    "properties": {
                        "imageRegistry": string("Registry replacing every image's registry; empty keeps them."),
                        "imagePullSecrets": PULL_SECRETS,
                    },
                },
                "imagePullSecrets": PULL_SECRETS,
                "nameOverride": string("Chart name override.", maxLength=63),
                "fullnameOverride": string("Full name override.", maxLength=63),
                "replicaCount": integer("Replicas without the HPA.", 1),
                "updateStrategy": {
                    "type": "object",
                    "description": "Deployment strategy; empty: chosen by gpu.enabled.",
                    "properties": {"type": {"enum": ["RollingUpdate", "Recreate"]}},
                    "dependentRequired": {"rollingUpdate": ["type"]},
                },
                "minReadySeconds": integer("Seconds ready before available.", 0, 3600),
                "progressDeadlineSeconds": integer("Seconds without progress before a rollout fails.", 1, 86400),
                "config": config_schema(),
                "cache": obj(
                    {
                        "maxEntries": setting("cache_max_entries", "Answers kept per worker; 0 = off."),
                        "maxBytes": setting("cache_max_bytes", "Estimated bytes of answers per worker."),
                    }
                ),
                "weights": obj(
                    {
                        "source": string("Where weights come from.", enum=["image", "initContainer", "existingClaim"]),
                        "mountPath": string("Mount path of the weights volume.", pattern="^/"),
                        "existingClaim": string("PVC name."),
                        "sizeLimit": QUANTITY,
                        "initContainer": obj(
                            {
                                "image": string("Init container image; empty means the service image."),
                                "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                "args": {"type": "array", "items": {"type": "string"}},
                            }
                        ),
                    },
                    ("source",),
                ),
                "cifarHead": obj(
                    {
                        "source": string(
                            "Where a trained head comes from.", enum=["none", "configMap", "secret", "url"]
                        ),
                        "name": string("ConfigMap or Secret name.", pattern=DNS_SUBDOMAIN),
                        "key": string("Key in the ConfigMap or Secret; the file name.", pattern=r"^[-._a-zA-Z0-9]+$"),
                        "url": string("http(s) URL of the head.", pattern=r"^(https?://\S+)?$"),
                        "sha256": string("sha256 of the head.", pattern="^([0-9a-fA-F]{64})?$"),
                        "mountPath": string("Folder the head is mounted in.", pattern="^/"),
                    },
                    ("source",),
                ),
                "resources": obj(
                    {
                        "requests": obj({"cpu": CPU, "memory": QUANTITY}, ("cpu", "memory")),
                        "limits": obj({"cpu": nullable(CPU), "memory": QUANTITY}, ("memory",)),
                    },
                    ("requests", "limits"),
                ),
                "gpu": obj(
                    {
                        "enabled": boolean("Run on GPU nodes."),
                        "count": integer("GPUs (and workers) per pod.", 1, 16),
                        "resourceName": string(
                            "Extended resource name of a GPU.", pattern=r"^[a-z0-9.-]+/[A-Za-z0-9._-]+$"
                        ),
                        "nodeSelector": free_map("Node selector for GPU nodes."),
                        "runtimeClassName": string("Runtime class for GPUs."),
                        "imageTagSuffix": string("Image tag suffix on GPU pods.", pattern=r"^[A-Za-z0-9_.-]*$"),
                    }
                ),
                "shutdown": obj(
                    {
                        "preStopSleepSeconds": integer("preStop pause.", 0, 300),
                        "drainSeconds": integer("Readiness 503 before closing.", 0, 600),
                        "gracefulTimeoutSeconds": integer("Time for in-flight requests.", 1, 3600),
                    }
                ),
                "probes": obj(
                    {
                        "startup": probe,
                        "readiness": probe,
                        "liveness": obj(
                            {**probe["properties"], "timeoutSeconds": integer("Seconds to answer.", 1, 60)}
                        ),
                    }
                ),
                "autoscaling": obj(
                    {
                        "enabled": boolean("Create an HPA."),
                        "minReplicas": integer("Fewest replicas.", 1),
                        "maxReplicas": integer("Most replicas.", 1),
                        "targetCPUUtilizationPercentage": integer("CPU target in percent.", 1, 1000),
                        "metrics": templated_list("autoscaling/v2 metric specs replacing the default."),
                        "customMetric": obj(
                            {
                                "enabled": boolean("Add a Pods metric."),
                                "name": string("Metric name.", enum=list(SCALING_METRICS)),
                                "targetAverageValue": {"type": ["string", "integer"], "description": "Per-pod target."},
                            }
                        ),
                        "behavior": {"type": "object", "description": "autoscaling/v2 behavior."},
                        "keda": obj(
                            {
                                "enabled": boolean("Create a KEDA ScaledObject instead of the HPA."),
                                "serverAddress": string("Prometheus URL.", pattern="^https?://"),
                                "metric": string("Summed gauge.", enum=list(SCALING_METRICS)),
                                "threshold": {
                                    "type": ["string", "integer", "number"],
                                    "pattern": r"^[0-9]+(\.[0-9]+)?$",
                                    "description": "Target per pod.",
                                },
                                "query": string("PromQL replacing the generated query."),
                                "pollingInterval": integer("Seconds between queries.", 1, 3600),
                                "authenticationRef": string("TriggerAuthentication name."),
                            }
                        ),
                    }
                ),
                "podDisruptionBudget": obj(
                    {
                        "enabled": boolean("Create a PDB when min replicas > 1."),
                        "maxUnavailable": {
                            "type": ["integer", "string"],
                            "minimum": 1,
                            "pattern": "^[0-9]+%$",
                            "description": "Pods down at once.",
                        },
                        "unhealthyPodEvictionPolicy": string(
                            "Eviction of running but not ready pods.", enum=["AlwaysAllow", "IfHealthyBudget"]
                        ),
                    }
                ),
                "service": obj(
                    {
                        "type": string("Service type.", enum=["ClusterIP", "NodePort", "LoadBalancer"]),
                        "port": integer("Service port.", 1, 65535),
                        "annotations": free_map("Service annotations."),
                        "loadBalancerSourceRanges": {
                            "type": "array",
                            "description": "CIDRs allowed through a LoadBalancer.",
                            "items": {"type": "string", "pattern": r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"},
                        },
                        "externalTrafficPolicy": string(
                            "Cluster or Local; empty: Cluster.", enum=["", "Cluster", "Local"]
                        ),
                    }
                ),
                "containerPort": integer("Container port.", 1024, 65535),
                "metrics": obj(
                    {
                        "port": {
                            "type": "integer",
                            "description": "Port of /metrics alone; 0 = on the http port.",
                            "anyOf": [{"const": 0}, {"minimum": 1024, "maximum": 65535}],
                        }
                    }
                ),
                "auth": obj(
                    {
                        "apiKeys": obj(
                            {
                                "existingSecret": string(
                                    "Secret holding the API keys; empty = no auth.", pattern=DNS_SUBDOMAIN
                                ),
                                "key": string("Only this entry of the Secret; empty = all.", pattern=SECRET_KEY),
                            }
                        )
                    }
                ),
                "serviceAccount": obj(
                    {
                        "create": boolean("Create a ServiceAccount."),
                        "name": string("Name."),
                        "annotations": free_map("Annotations."),
                    }
                ),
                "ingress": obj(
                    {
                        "enabled": boolean("Create an Ingress."),
                        "className": string("IngressClass."),
                        "annotations": free_map("Annotations."),
                        "hosts": {
                            "type": "array",
                            "items": obj(
                                {
                                    "host": string("Host name."),
                                    "paths": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": obj(
                                            {
                                                "path": string("Path.", pattern="^/"),
                                                "pathType": string(
                                                    "Path type.", enum=["Prefix", "Exact", "ImplementationSpecific"]
                                                ),
                                            },
                                            ("path", "pathType"),
                                        ),
                                    },
                                },
                                ("host", "paths"),
                            ),
                        },
                        "tls": free_list("TLS blocks."),
                    }
                ),
                "httpRoute": obj(
                    {
                        "enabled": boolean("Create an HTTPRoute."),
                        "annotations": free_map("Annotations."),
                        "parentRefs": {**templated_list("Gateways the route attaches to."), "minItems": 1},
                        "hostnames": templated_list("Host names.") | {"items": {"type": "string"}},
                        "matches": free_list("HTTPRoute matches."),
                        "filters": free_list("HTTPRoute filters."),
                    }
                ),
                "networkPolicy": obj(
                    {
                        "enabled": boolean("Create a NetworkPolicy."),
                        "allowedFrom": free_list("NetworkPolicy peers allowed to call the API."),
                        "monitoringNamespaceSelector": free_map("Labels of the monitoring namespace."),
                        "allowAllEgress": boolean("Allow all egress."),
                        "extraIngress": templated_list("More NetworkPolicy ingress rules."),
                    }
                ),
                "monitoring": obj(
                    {
                        "serviceMonitor": scrape("ServiceMonitor"),
                        "podMonitor": scrape("PodMonitor"),
                        "prometheusRule": obj(
                            {
                                "enabled": boolean("Create a PrometheusRule."),
                                "additionalLabels": free_map("Extra labels."),
                                "job": string("job label of this release's targets; empty: the chart's."),
                                "disabled": per_alert("Alerts left out.", {"type": "boolean"}),
                                "additionalRuleLabels": free_map("Labels on every alert."),
                                "additionalRuleAnnotations": free_map("Annotations on every alert."),
                                "alertLabels": per_alert(
                                    "Labels per alert.", {"type": "object", "additionalProperties": {"type": "string"}}
                                ),
                            }
                        ),
                        "dashboards": obj(
                            {
                                "enabled": boolean("Create dashboard ConfigMaps."),
                                "label": string("Sidecar label.", minLength=1),
                                "labelValue": string("Sidecar label value."),
                                "annotations": free_map("Annotations."),
                                "additionalLabels": free_map("Extra labels."),
                            }
                        ),
                    }
                ),
                "commonLabels": templated_map("Labels on every object."),
                "podAnnotations": templated_map("Pod annotations."),
                "podLabels": templated_map("Pod labels."),
                "nodeSelector": templated_map("Node selector."),
                "tolerations": templated_list("Tolerations."),
                "affinity": templated_map("Affinity."),
                "topologySpread": obj(
                    {
                        "mode": string("Default spread.", enum=["soft", "hard", "none"]),
                        "maxSkew": integer("Most pods one domain holds above another.", 1),
                        "topologyKeys": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    }
                ),
                "topologySpreadConstraints": templated_list("Topology spread constraints replacing the default."),
                "priorityClassName": string("PriorityClass."),
                "extraEnv": templated_list("Extra environment variables."),
                "extraEnvFrom": templated_list("envFrom entries."),
                "extraVolumes": templated_list("Extra volumes."),
                "extraVolumeMounts": templated_list("Extra volume mounts."),
                "initContainers": templated_list("Init containers after the chart's own."),
                "sidecars": templated_list("Extra containers."),
                "verticalPodAutoscaler": obj(
                    {
                        "enabled": boolean("Create a VPA."),
                        "updateMode": string(
                            "VPA update mode.", enum=["Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"]
                        ),
                        "controlledResources": {
                            "type": "array",
                            "items": {"enum": ["cpu", "memory"]},
                            "minItems": 1,
                            "uniqueItems": True,
                        },
                        "controlledValues": string("What the VPA changes.", enum=["RequestsOnly", "RequestsAndLimits"]),
                        "minAllowed": obj({"cpu": CPU, "memory": QUANTITY}),
                        "maxAllowed": obj({"cpu": CPU, "memory": QUANTITY}),
                    }
                ),
                "podSecurityContext": POD_SECURITY_CONTEXT,
                "containerSecurityContext": CONTAINER_SECURITY_CONTEXT,
                "tests": obj({"image": string("Test pod image; empty means the service image.")}),
            }
        ),
    }


def render() -> str:
    return json.dumps(values_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed schema is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is stale: run python scripts/chart_schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
