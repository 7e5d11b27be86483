"""Every Kubernetes kind the operator reads or writes: one table, used by the API client (URL
paths), the controller (which children it watches and GETs) and the RBAC docs.

Static on purpose: the operator only manages these kinds, and discovery would cost a round trip
per start and a failure mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gptoss_operator.api import routepolicy
from gptoss_operator.api.v1alpha1 import API_VERSION, KIND, PLURAL


@dataclass(frozen=True)
class Kind:
    api_version: str  # "apps/v1", or "v1" for the core group
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def url_prefix(self) -> str:
        return f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"


DEPLOYMENT: Final = Kind("apps/v1", "Deployment", "deployments")
SERVICE: Final = Kind("v1", "Service", "services")
PDB: Final = Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
PVC: Final = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
JOB: Final = Kind("batch/v1", "Job", "jobs")
EVENT: Final = Kind("v1", "Event", "events")
CONFIG_MAP: Final = Kind("v1", "ConfigMap", "configmaps")
SERVICE_ACCOUNT: Final = Kind("v1", "ServiceAccount", "serviceaccounts")
ROLE: Final = Kind("rbac.authorization.k8s.io/v1", "Role", "roles")
ROLE_BINDING: Final = Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings")
# Watched (through kopf) for the names of their keys only; deliberately not in ALL, so the
# operator's API client cannot address a Secret at all.
SECRET: Final = Kind("v1", "Secret", "secrets")
# Leader election (leader.py): one Lease in the operator's own namespace.
LEASE: Final = Kind("coordination.k8s.io/v1", "Lease", "leases")
MODEL_DEPLOYMENT: Final = Kind(API_VERSION, KIND, PLURAL)
ROUTE_POLICY: Final = Kind(API_VERSION, routepolicy.KIND, routepolicy.PLURAL)

# Children (owned through ownerReferences, applied under one field manager).
MODEL_DEPLOYMENT_CHILDREN: Final = (DEPLOYMENT, SERVICE, PDB, PVC, JOB)
ROUTE_POLICY_CHILDREN: Final = (CONFIG_MAP, SERVICE_ACCOUNT, ROLE, ROLE_BINDING, DEPLOYMENT, SERVICE, PDB)
CHILDREN: Final = tuple(dict.fromkeys((*MODEL_DEPLOYMENT_CHILDREN, *ROUTE_POLICY_CHILDREN)))

ALL: Final = (*CHILDREN, EVENT, LEASE, MODEL_DEPLOYMENT, ROUTE_POLICY)
BY_KIND: Final = {k.kind: k for k in ALL}
BY_API_VERSION_KIND: Final = {(k.api_version, k.kind): k for k in ALL}
