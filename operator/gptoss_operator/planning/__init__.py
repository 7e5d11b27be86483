"""GPU catalog, gpt-oss model profiles and the planner: pure functions from a spec to a Plan.

No Kubernetes client, no kopf, no HTTP (import-linter enforces it). The controller calls:

* :func:`plan_deployment` (spec, settings) -> ``Plan | Refusal``
* :func:`startup_budget` (spec, settings) -> :class:`StartupBudget`
* :meth:`PlannerSettings.node_label_for` (gpu profile) -> label key and values for node affinity
"""

from gptoss_operator.planning.catalog import CATALOG, GPU_TYPES, GPUProfile, gpu_profile
from gptoss_operator.planning.memory import MemoryBudget, memory_budget
from gptoss_operator.planning.model_profiles import PROFILES, ModelProfile, model_profile
from gptoss_operator.planning.planner import FeasiblePlan, Refusal, budget_for, plan_deployment
from gptoss_operator.planning.settings import DEFAULT_SETTINGS, NodeLabel, PlannerSettings
from gptoss_operator.planning.startup import StartupBudget, startup_budget

__all__ = [
    "CATALOG",
    "DEFAULT_SETTINGS",
    "GPU_TYPES",
    "PROFILES",
    "FeasiblePlan",
    "GPUProfile",
    "MemoryBudget",
    "ModelProfile",
    "NodeLabel",
    "PlannerSettings",
    "Refusal",
    "StartupBudget",
    "budget_for",
    "gpu_profile",
    "memory_budget",
    "model_profile",
    "plan_deployment",
    "startup_budget",
]
