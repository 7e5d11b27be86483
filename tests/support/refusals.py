"""The API server's refusal of an object, as kubectl prints it, split into (field, message).

kubectl prints one problem as ``The Kind "name" is invalid: <field>: <message>`` and several
as a ``* <field>: <message>`` line each. ``<nil>`` is the field of root-level rules and of the
API server's note that CEL rules were skipped after a blocking schema error.
"""

from __future__ import annotations

import re

_ONE = re.compile(r'^(?:Error from server \(Invalid\): )?The \S+ "[^"]*" is invalid: (?P<rest>.+)$')


def refusals(stderr: str) -> list[tuple[str, str]]:
    """Every (field, message) of a refusal; empty when stderr holds none."""
    out = []
    for line in stderr.splitlines():
        one = _ONE.match(line)
        rest = one["rest"] if one else line[2:] if line.startswith("* ") else ""
        field, sep, message = rest.partition(": ")
        if sep:
            # The scale subresource names its specReplicasPath as written: ".spec.replicas".
            out.append((field.removeprefix("."), message))
    return out


def messages_for(stderr: str, field: str) -> list[str]:
    """The messages naming ``field`` (exactly, not a field below it)."""
    return [message for name, message in refusals(stderr) if name == field]


def field_of(stderr: str, message: str) -> str:
    """The field the (one) refusal carrying ``message`` names."""
    (field,) = [name for name, text in refusals(stderr) if message in text]
    return field
