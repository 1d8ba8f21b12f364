"""The fields of the CRDs the chart may write: Prometheus Operator (monitoring.coreos.com/v1), KEDA's ScaledObject
(keda.sh/v1alpha1), Gateway API's HTTPRoute (gateway.networking.k8s.io/v1) and the VerticalPodAutoscaler
(autoscaling.k8s.io/v1).

kubernetes-validate has no schemas for CRDs, so these strict subsets of the CRDs' OpenAPI schemas
(field names, types, enums, required keys and the Duration pattern as each project defines them) stand in.
"""

from __future__ import annotations

DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
    r"(([0-9]+)s)?(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    "additionalProperties": False,
}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}},
}


def _crd(kind: str, spec: dict, api_version: str = "monitoring.coreos.com/v1") -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
    }


ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string"},
        "targetPort": {"type": ["string", "integer"]},
        "path": {"type": "string"},
        "scheme": {"enum": ["http", "https"]},
        "interval": DURATION,
        "scrapeTimeout": DURATION,
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array"},
        "metricRelabelings": {"type": "array"},
    },
}

SERVICE_MONITOR = _crd(
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "any": {"type": "boolean"},
                    "matchNames": {"type": "array", "items": {"type": "string"}},
                },
            },
            "endpoints": {"type": "array", "items": ENDPOINT},
            "jobLabel": {"type": "string"},
            "targetLabels": {"type": "array", "items": {"type": "string"}},
            "podTargetLabels": {"type": "array", "items": {"type": "string"}},
        },
    },
)

POD_MONITOR = _crd(
    "PodMonitor",
    {
        "type": "object",
        "required": ["selector"],
        "additionalProperties": False,
        "properties": {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": SERVICE_MONITOR["properties"]["spec"]["properties"]["namespaceSelector"],
            "podMetricsEndpoints": {
                "type": "array",
                "items": {
                    **ENDPOINT,
                    "properties": {**ENDPOINT["properties"], "portNumber": {"type": "integer"}},
                },
            },
            "jobLabel": {"type": "string"},
            "podTargetLabels": {"type": "array", "items": {"type": "string"}},
        },
    },
)

RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": ["string", "integer"]},
        "for": DURATION,
        "keep_firing_for": DURATION,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}

PROMETHEUS_RULE = _crd(
    "PrometheusRule",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": DURATION,
                        "limit": {"type": "integer"},
                        "partial_response_strategy": {"type": "string"},
                        "rules": {"type": "array", "items": RULE},
                    },
                },
            },
        },
    },
)

OBJECT_REFERENCE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"}},
}

SCALED_OBJECT = _crd(
    "ScaledObject",
    {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                **OBJECT_REFERENCE,
                "properties": {**OBJECT_REFERENCE["properties"], "envSourceContainerName": {"type": "string"}},
            },
            "pollingInterval": {"type": "integer"},
            "cooldownPeriod": {"type": "integer"},
            "initialCooldownPeriod": {"type": "integer"},
            "idleReplicaCount": {"type": "integer"},
            "minReplicaCount": {"type": "integer"},
            "maxReplicaCount": {"type": "integer"},
            "fallback": {
                "type": "object",
                "required": ["failureThreshold", "replicas"],
                "properties": {"failureThreshold": {"type": "integer"}, "replicas": {"type": "integer"}},
            },
            "advanced": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "horizontalPodAutoscalerConfig": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                    },
                    "scalingModifiers": {"type": "object"},
                },
            },
            "triggers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["type", "metadata"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string"},
                        "name": {"type": "string"},
                        "metadata": STRING_MAP,  # every trigger parameter is a string
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        "useCachedMetrics": {"type": "boolean"},
                        "authenticationRef": {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                        },
                    },
                },
            },
        },
    },
    "keda.sh/v1alpha1",
)

PARENT_REFERENCE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "namespace": {"type": "string"},
        "name": {"type": "string", "minLength": 1},
        "sectionName": {"type": "string"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
}
HTTP_MATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                "value": {"type": "string", "maxLength": 1024},
            },
        },
        "headers": {"type": "array"},
        "queryParams": {"type": "array"},
        "method": {"enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]},
    },
}
HTTP_ROUTE = _crd(
    "HTTPRoute",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "parentRefs": {"type": "array", "maxItems": 32, "items": PARENT_REFERENCE},
            "hostnames": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 253}},
            "rules": {
                "type": "array",
                "maxItems": 16,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "matches": {"type": "array", "maxItems": 64, "items": HTTP_MATCH},
                        "filters": {"type": "array", "maxItems": 16, "items": {"type": "object", "required": ["type"]}},
                        "backendRefs": {
                            "type": "array",
                            "maxItems": 16,
                            "items": {
                                **PARENT_REFERENCE,
                                "properties": {
                                    **PARENT_REFERENCE["properties"],
                                    "weight": {"type": "integer"},
                                    "filters": {"type": "array"},
                                },
                            },
                        },
                        "timeouts": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"request": {"type": "string"}, "backendRequest": {"type": "string"}},
                        },
                    },
                },
            },
        },
    },
    "gateway.networking.k8s.io/v1",
)

RESOURCE_LIST = {"type": "object", "additionalProperties": {"type": ["string", "integer"]}}
VERTICAL_POD_AUTOSCALER = _crd(
    "VerticalPodAutoscaler",
    {
        "type": "object",
        "required": ["targetRef"],
        "additionalProperties": False,
        "properties": {
            "targetRef": OBJECT_REFERENCE,
            "updatePolicy": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "updateMode": {"enum": ["Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"]},
                    "minReplicas": {"type": "integer"},
                },
            },
            "resourcePolicy": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "containerPolicies": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "containerName": {"type": "string"},
                                "mode": {"enum": ["Auto", "Off"]},
                                "minAllowed": RESOURCE_LIST,
                                "maxAllowed": RESOURCE_LIST,
                                "controlledResources": {"type": "array", "items": {"type": "string"}},
                                "controlledValues": {"enum": ["RequestsAndLimits", "RequestsOnly"]},
                            },
                        },
                    }
                },
            },
            "recommenders": {"type": "array"},
        },
    },
    "autoscaling.k8s.io/v1",
)

CRD_SCHEMAS = {
    "ServiceMonitor": SERVICE_MONITOR,
    "PodMonitor": POD_MONITOR,
    "PrometheusRule": PROMETHEUS_RULE,
    "ScaledObject": SCALED_OBJECT,
    "HTTPRoute": HTTP_ROUTE,
    "VerticalPodAutoscaler": VERTICAL_POD_AUTOSCALER,
}
