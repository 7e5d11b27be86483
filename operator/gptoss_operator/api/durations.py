"""Duration strings (``500ms``, ``2s``, ``1.5m``, ``1h``) as the RoutePolicy API writes them.

One number and one unit, the subset both sides understand: the router's file parser
(docs/router.md, "Durations") and CEL's ``duration()``, which follows Go's
``time.ParseDuration`` (https://pkg.go.dev/time#ParseDuration). The regular expression is RE2
syntax, so the CRD's CEL rule and :func:`duration_seconds` accept exactly the same strings.
"""

from __future__ import annotations

import re
from typing import Final

DURATION_REGEX: Final = "^[0-9]+([.][0-9]+)?(ms|s|m|h)$"
# Bounds the string so the API server's CEL cost estimate for the rule stays small.
DURATION_MAX_LENGTH: Final = 32

_COMPILED: Final = re.compile(DURATION_REGEX)
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """``"2s"`` -> 2.0, ``"500ms"`` -> 0.5, ``"1m"`` -> 60.0; ValueError unless positive and well-formed."""
    match = _COMPILED.match(text)
    if match is None or len(text) > DURATION_MAX_LENGTH:
        raise ValueError(
            f"{text!r} is not a duration: write a positive number and a unit ms, s, m or h, e.g. 500ms, 2s, 1m"
        )
    unit = match.group(2)
    seconds = float(text.removesuffix(unit)) * _UNIT_SECONDS[unit]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


def duration_rule(field: str) -> tuple[str, str]:
    """The CEL rule for one duration field and its message naming ``field``."""
    return (
        f"self.matches('{DURATION_REGEX}') && duration(self) > duration('0s')",
        f"{field} must be a positive duration: a number and a unit ms, s, m or h, e.g. 500ms, 2s, 1m",
    )
