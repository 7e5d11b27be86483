"""How long a vLLM pod may take to start before the startupProbe gives up.

Loading a 65 GB model takes minutes; killing a loading pod restarts the whole load
(kserve/kserve#5062, substratusai/kubeai#172). The budget is the sum of the worst cases in
docs/gpt-oss-facts.md "Startup time": download (when pods fetch the weights themselves),
reading the weights, and engine initialisation with a cold torch.compile cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from gptoss_operator.api import ModelDeploymentSpec
from gptoss_operator.planning.model_profiles import GIB, model_profile
from gptoss_operator.planning.settings import DEFAULT_SETTINGS, PlannerSettings

# docs/gpt-oss-facts.md "Startup time": about 10 min with a cold compile cache at TP >= 2 (3-5 min
# with warm caches). The compile cache is not guaranteed to survive a reschedule, so budget cold.
ENGINE_INIT_SECONDS: Final = 600
# Probe period: fine enough that a ready pod is noticed quickly, coarse enough to be cheap.
PROBE_PERIOD_SECONDS: Final = 10


@dataclass(frozen=True)
class StartupBudget:
    """startupProbe timing for a vLLM pod, with the parts it was built from (all seconds)."""

    download_seconds: int
    load_seconds: int
    engine_init_seconds: int
    period_seconds: int

    @property
    def total_seconds(self) -> int:
        return self.download_seconds + self.load_seconds + self.engine_init_seconds

    @property
    def failure_threshold(self) -> int:
        """``startupProbe.failureThreshold`` for ``periodSeconds = period_seconds``."""
        return math.ceil(self.total_seconds / self.period_seconds)

    def explain(self) -> str:
        return (
            f"startup budget {self.total_seconds} s = download {self.download_seconds} s + load "
            f"{self.load_seconds} s + engine init {self.engine_init_seconds} s"
        )


def startup_budget(spec: ModelDeploymentSpec, settings: PlannerSettings = DEFAULT_SETTINGS) -> StartupBudget:
    """The startupProbe budget for ``spec``'s pods.

    With ``source.cache`` a download Job fills the PVC before pods start, and with
    ``source.persistentVolumeClaim`` the weights are already on the user's volume, so pods only
    read; otherwise every pod downloads the root safetensors first (docs/gpt-oss-facts.md
    "Checkpoint sizes", "Startup time").
    """
    model = model_profile(spec.model)
    download = (
        0.0 if spec.source.weights_on_volume else model.checkpoint_bytes / settings.download_bytes_per_second
    )
    load = model.weights_gib * GIB / settings.volume_read_bytes_per_second
    return StartupBudget(
        download_seconds=math.ceil(download),
        load_seconds=math.ceil(load),
        engine_init_seconds=ENGINE_INIT_SECONDS,
        period_seconds=PROBE_PERIOD_SECONDS,
    )
