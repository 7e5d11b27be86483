"""Names the RoutePolicy API shares with the router configuration file (docs/router.md).

A RoutePolicy resolves into the router's file, so the two speak the same words: provider
flavors, fallback triggers and residency scopes. They live here, in the pure API layer, so the
API never imports the router; a unit test keeps them equal to the router's own tables
(``router.providers.FLAVORS``, ``router.config.FailureKind``).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# Request/response quirk profiles of OpenAI-compatible gpt-oss servers (docs/router.md, "Provider flavors").
FlavorName = Literal[
    "vllm", "openai", "openrouter", "groq", "cerebras", "together", "fireworks", "baseten", "bedrock", "azure"
]
FLAVOR_NAMES: Final[tuple[str, ...]] = get_args(FlavorName)

# What may trigger a fallback before the first byte reaches the client (docs/router.md, "Fallback and health").
FallbackTrigger = Literal["connectError", "timeout", "5xx", "429"]
FALLBACK_TRIGGERS: Final[tuple[str, ...]] = get_args(FallbackTrigger)

# Where a request matched by a residency rule may go: in-cluster backends only, or anywhere.
ResidencyScope = Literal["cluster", "any"]
RESIDENCY_SCOPES: Final[tuple[str, ...]] = get_args(ResidencyScope)
