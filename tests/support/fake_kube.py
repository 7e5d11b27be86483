"""An in-memory stand-in for ``kube.KubeAPI`` for unit tests of the writer and reconcile.

It keeps objects in a dict and answers the way the API server does for what the operator
uses: server-side apply creates or updates (a spec change bumps ``generation``, status is
kept), merge patches of status (``None`` removes a key), deletes, Events, and GETs. Cluster
tests run against the real API server; this only lets the controller's shape be tested
without one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator.kube import KubeError

JSON = dict[str, Any]
ObjKey = tuple[str, str, str]  # kind, namespace, name


def _merge(target: JSON, patch: JSON) -> JSON:
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclass
class FakeKubeAPI:
    objects: dict[ObjKey, JSON] = field(default_factory=dict)
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # (verb, kind, name)
    events: list[JSON] = field(default_factory=list)
    fail_apply: dict[str, KubeError] = field(default_factory=dict)  # kind -> error to raise
    field_manager: str = "gptoss-operator"

    def put(self, obj: JSON) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = copy.deepcopy(obj)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> JSON | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def apply(self, manifest: JSON) -> JSON:
        kind, meta = manifest["kind"], manifest["metadata"]
        self.writes.append(("apply", kind, meta["name"]))
        if kind in self.fail_apply:
            raise self.fail_apply[kind]
        key = (kind, meta["namespace"], meta["name"])
        old = self.objects.get(key)
        new = copy.deepcopy(manifest)
        generation = 1
        if old is not None:
            same_spec = old.get("spec") == manifest.get("spec")
            generation = old["metadata"].get("generation", 1) + (0 if same_spec else 1)
            if "status" in old:
                new["status"] = old["status"]
        new["metadata"]["generation"] = generation
        self.objects[key] = new
        return copy.deepcopy(new)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: JSON
    ) -> JSON:
        self.writes.append(("patch", f"{kind}/status", name))
        key = (kind, namespace, name)
        if key not in self.objects:
            raise KubeError(404, f"{kind} {name} not found")
        obj = self.objects[key]
        obj["status"] = _merge(obj.get("status") or {}, status)
        return copy.deepcopy(obj)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.writes.append(("delete", kind, name))
        self.objects.pop((kind, namespace, name), None)

    async def event(self, regarding: JSON, *, type_: str, reason: str, message: str, component: str) -> None:
        self.writes.append(("create", "Event", regarding["metadata"]["name"]))
        self.events.append({"type": type_, "reason": reason, "message": message})

    async def aclose(self) -> None:
        return None
