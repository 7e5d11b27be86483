"""Property-based: any configuration file is either a configuration or refused with a
ConfigError that names where the problem is; nothing else escapes parse_config."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptoss_operator.router.config import ConfigError, RouterConfig, parse_config

VALID: dict[str, Any] = {
    "version": 1,
    "server": {
        "maxBodyBytes": 8388608,
        "connections": {"max": 100, "headerTimeout": "10s", "idleTimeout": "75s", "maxHeaderBytes": 65536},
        "scrape": {"interval": "1s", "timeout": "500ms", "staleAfter": "5s"},
        "health": {"failuresToEject": 3, "cooldown": "10s"},
    },
    "routes": [
        {
            "model": "m",
            "backends": [
                {"name": "local", "weight": 80, "cluster": {"endpoints": ["http://10.0.0.7:8000"]}},
                {
                    "name": "hosted",
                    "weight": 20,
                    "external": {"baseURL": "https://p.example/v1", "model": "x"},
                },
            ],
            "overflow": {"to": "hosted", "when": {"queueDepthAbove": 16}},
            "fallback": {"on": ["connectError", "timeout"], "maxAttempts": 2},
            "timeouts": {"connect": "2s", "firstByte": "60s", "idle": "30s"},
        }
    ],
    "residency": [{"name": "r", "match": {"headers": {"x-data-class": "restricted"}}, "allow": "cluster"}],
}

SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = paths(VALID)


def test_the_base_document_is_valid() -> None:
    assert isinstance(parse_config(json.dumps(VALID)), RouterConfig)


@SETTINGS
@given(where=st.sampled_from(ALL_PATHS), value=json_values, delete=st.booleans())
def test_any_single_change_is_accepted_or_refused_naming_the_field(
    where: tuple[Any, ...], value: Any, delete: bool
) -> None:
    doc = copy.deepcopy(VALID)
    parent = doc
    for part in where[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    try:
        parse_config(json.dumps(doc))
    except ConfigError as e:
        message = str(e)
        named = [str(p) for p in where if isinstance(p, str)]
        # Pydantic errors carry the dotted location; cross-field checks name the route and the
        # setting; a changed version is refused by number.
        assert any(n in message for n in named) or "route 'm'" in message or "version" in message, (
            where,
            message,
        )


@SETTINGS
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    with contextlib.suppress(ConfigError):  # anything else escaping fails the test
        parse_config(text)


@SETTINGS
@given(doc=json_values)
def test_arbitrary_json_never_crashes_the_parser(doc: Any) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(json.dumps(doc))


def test_pathological_nesting_is_a_config_error() -> None:
    for text in ("[" * 100_000, "{a: " * 50_000, "version: 1\nroutes: " + "[" * 5_000):
        with pytest.raises(ConfigError, match=r"nested too deeply|invalid YAML"):
            parse_config(text)
