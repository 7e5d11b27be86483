"""Every Kubernetes kind the operator reads or writes: one table, used by the API client (URL
paths), the controller (which children it watches and GETs) and the RBAC docs.

Static on purpose: the operator only manages these kinds, and discovery would cost a round trip
per start and a failure mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

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
MODEL_DEPLOYMENT: Final = Kind(API_VERSION, KIND, PLURAL)

# Children of a ModelDeployment (owned through ownerReferences, applied under one field manager).
MODEL_DEPLOYMENT_CHILDREN: Final = (DEPLOYMENT, SERVICE, PDB, PVC, JOB)

ALL: Final = (*MODEL_DEPLOYMENT_CHILDREN, EVENT, MODEL_DEPLOYMENT)
BY_KIND: Final = {k.kind: k for k in ALL}
BY_API_VERSION_KIND: Final = {(k.api_version, k.kind): k for k in ALL}
