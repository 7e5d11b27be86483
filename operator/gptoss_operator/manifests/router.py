"""A RoutePolicy's children (pure builders): the resolved router configuration and the router's
ConfigMap, ServiceAccount, Role, RoleBinding, Deployment, Service and PodDisruptionBudget.

The configuration is the router's file format v1 (docs/router.md) resolved from the policy:
a ``modelDeployment`` backend becomes that model's Service, watched through EndpointSlices; a
``service`` backend the same for any Service; an ``external`` backend's key Secret becomes a
file path under a Secret volume. No Secret content is ever part of a manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import yaml

from gptoss_operator import labels as keys
from gptoss_operator.api.routepolicy import KIND, ROUTER_NAME_SUFFIX, Backend, RoutePolicy
from gptoss_operator.api.v1alpha1 import API_VERSION
from gptoss_operator.manifests.common import JSON, child_names, image_pull_secrets, with_config_hash
from gptoss_operator.settings import MANAGED_BY, OperatorSettings

APP_NAME: Final = "gptoss-router"
CONFIG_DIR: Final = "/etc/gptoss-router"
CONFIG_FILE: Final = "config.yaml"
KEYS_DIR: Final = "/var/run/secrets/gptoss-router"
# The router image runs as this non-root user (runtime-image/); any non-zero id works.
RUN_AS_USER: Final = 65532


@dataclass(frozen=True)
class RouterNames:
    """The names of one RoutePolicy's children: built here and nowhere else."""

    router: str  # Deployment, Service, ServiceAccount, Role, RoleBinding, PodDisruptionBudget
    config_map: str


def router_names(policy_name: str) -> RouterNames:
    router = f"{policy_name}{ROUTER_NAME_SUFFIX}"
    return RouterNames(router=router, config_map=router)


def selector_labels(policy_name: str) -> dict[str, str]:
    return {keys.NAME: APP_NAME, keys.INSTANCE: policy_name, keys.COMPONENT: "router"}


def _metadata(policy: RoutePolicy, name: str) -> JSON:
    meta = policy.metadata
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": {**selector_labels(meta["name"]), keys.MANAGED_BY: MANAGED_BY},
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


# ---------------------------------------------------------------------------- configuration


def key_file(secret: str, key: str) -> str:
    return f"{KEYS_DIR}/{secret}/{key}"


def _backend_config(backend: Backend, namespace: str, served_models: Mapping[str, str]) -> JSON:
    out: JSON = {"name": backend.name, "weight": backend.weight}
    if backend.model_deployment is not None:
        md = backend.model_deployment.name
        cluster: JSON = {
            "service": {"name": child_names(md).service, "namespace": namespace, "port": "http"},
            "flavor": "vllm",
            "metrics": True,
        }
        if md in served_models:  # vLLM's --served-model-name; unknown until the model exists
            cluster["model"] = served_models[md]
        out["cluster"] = cluster
    elif backend.service is not None:
        out["cluster"] = {
            "service": {"name": backend.service.name, "namespace": namespace, "port": backend.service.port},
            "flavor": "vllm",
            "metrics": True,
        }
    elif backend.external is not None:
        ext = backend.external
        external: JSON = {"baseURL": ext.base_url, "model": ext.model, "flavor": ext.flavor}
        if ext.api_key_secret_ref is not None:
            external["apiKeyFile"] = key_file(ext.api_key_secret_ref.name, ext.api_key_secret_ref.key)
        out["external"] = external
    return out


def router_config(policy: RoutePolicy, served_models: Mapping[str, str]) -> JSON:
    """The router configuration file (v1) for ``policy``; ``served_models`` maps a
    ModelDeployment's name to the model name its vLLM serves."""
    namespace = policy.metadata["namespace"]
    routes = []
    for route in policy.spec.routes:
        out: JSON = {
            "model": route.model,
            "backends": [_backend_config(b, namespace, served_models) for b in route.backends],
            "fallback": {"on": list(route.fallback.on), "maxAttempts": route.fallback.max_attempts},
            "timeouts": {
                "connect": route.timeouts.connect,
                "firstByte": route.timeouts.first_byte,
                "idle": route.timeouts.idle,
            },
        }
        if route.overflow is not None:
            overflow = route.overflow.model_dump(by_alias=True, exclude_none=True, mode="json")
            overflow["to"] = [route.overflow.to]
            out["overflow"] = overflow
        routes.append(out)
    config: JSON = {
        "version": 1,
        # null: the pod's own service account (its Role allows EndpointSlices, nothing else).
        "server": {"kubernetes": {"kubeconfig": None}},
        "routes": routes,
    }
    if policy.spec.residency:
        config["residency"] = [
            r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in policy.spec.residency
        ]
    return config


# ---------------------------------------------------------------------------- children


def config_map(policy: RoutePolicy, config: JSON) -> JSON:
    names = router_names(policy.metadata["name"])
    text = yaml.safe_dump(config, sort_keys=False)
    return with_config_hash(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(policy, names.config_map),
            "data": {CONFIG_FILE: text},
        }
    )


def service_account(policy: RoutePolicy) -> JSON:
    names = router_names(policy.metadata["name"])
    return with_config_hash(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(policy, names.router)}
    )


def role(policy: RoutePolicy) -> JSON:
    """What the router may do: read EndpointSlices in this namespace, and nothing else."""
    names = router_names(policy.metadata["name"])
    return with_config_hash(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _metadata(policy, names.router),
            "rules": [
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        }
    )


def role_binding(policy: RoutePolicy) -> JSON:
    names = router_names(policy.metadata["name"])
    return with_config_hash(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(policy, names.router),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.router},
            "subjects": [
                {"kind": "ServiceAccount", "name": names.router, "namespace": policy.metadata["namespace"]}
            ],
        }
    )


def _key_secrets(policy: RoutePolicy) -> dict[str, list[str]]:
    """Secret name -> the keys the router reads from it (sorted, for stable manifests)."""
    wanted: dict[str, set[str]] = {}
    for route in policy.spec.routes:
        for backend in route.backends:
            ref = backend.external.api_key_secret_ref if backend.external else None
            if ref is not None:
                wanted.setdefault(ref.name, set()).add(ref.key)
    return {name: sorted(wanted[name]) for name in sorted(wanted)}


def deployment(policy: RoutePolicy, settings: OperatorSettings) -> JSON:
    """The router pods: the operator's own image, restricted pod security, spread over nodes.

    The pod template carries nothing that changes with the configuration or the keys: both
    reach running routers as files the kubelet updates, which the router reloads (no restart).
    """
    name = policy.metadata["name"]
    names = router_names(name)
    port = policy.spec.router.port
    volumes: list[JSON] = [
        {"name": "config", "configMap": {"name": names.config_map}},
        # Python and the router write nothing else; a writable /tmp keeps libraries that want
        # one working under readOnlyRootFilesystem.
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[JSON] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    for i, (secret, secret_keys) in enumerate(_key_secrets(policy).items()):
        # optional: a missing Secret makes that backend unavailable (the router says which
        # file is missing) instead of keeping every router pod from starting.
        volumes.append(
            {
                "name": f"key-{i}",
                "secret": {
                    "secretName": secret,
                    "optional": True,
                    "defaultMode": 0o440,
                    "items": [{"key": k, "path": k} for k in secret_keys],
                },
            }
        )
        mounts.append({"name": f"key-{i}", "mountPath": f"{KEYS_DIR}/{secret}", "readOnly": True})
    labels = {**selector_labels(name), keys.MANAGED_BY: MANAGED_BY}
    container: JSON = {
        "name": "router",
        "image": settings.router_image,
        "command": ["gptoss-operator"],
        "args": [
            "router",
            "--config",
            f"{CONFIG_DIR}/{CONFIG_FILE}",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    manifest: JSON = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(policy, names.router),
        "spec": {
            "replicas": policy.spec.router.replicas,
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": names.router,
                    # The router watches EndpointSlices with its own token.
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    # Restricted Pod Security Standard
                    # (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    **image_pull_secrets(settings),
                    "terminationGracePeriodSeconds": 30,
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector_labels(name)},
                        }
                    ],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    return with_config_hash(manifest)


def service(policy: RoutePolicy) -> JSON:
    name = policy.metadata["name"]
    port = policy.spec.router.port
    return with_config_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(policy, router_names(name).router),
            "spec": {
                "type": policy.spec.router.service_type,
                "selector": selector_labels(name),
                "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
            },
        }
    )


def disruption_budget(policy: RoutePolicy) -> JSON | None:
    """At most one router pod down at a time in voluntary disruptions; none for one replica."""
    if policy.spec.router.replicas <= 1:
        return None
    name = policy.metadata["name"]
    return with_config_hash(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _metadata(policy, router_names(name).router),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}},
        }
    )
