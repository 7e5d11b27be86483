"""The writer and the whole reconcile (gather -> decide -> write) against an in-memory API."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_operator.controller.reconcile import reconcile
from gptoss_operator.controller.store import Store
from gptoss_operator.kube import KubeError
from gptoss_operator.observed import summarize_child
from gptoss_operator.settings import OperatorSettings
from tests.support.fake_kube import FakeKubeAPI

SETTINGS = OperatorSettings()
KEY = ("llm", "m")


def md(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "llm", "uid": "u-1", "generation": 1},
        "spec": {"model": "gpt-oss-20b", "gpu": {"type": "L4"}, **spec},
    }


def setup(**spec: Any) -> tuple[FakeKubeAPI, Store]:
    api, store = FakeKubeAPI(), Store()
    api.put(md(**spec))
    store.model_deployments[KEY] = md(**spec)
    return api, store


async def test_first_reconcile_writes_children_and_status_then_a_resync_writes_nothing() -> None:
    api, store = setup()
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    verbs = sorted((v, k) for v, k, _ in api.writes)
    assert verbs == [
        ("apply", "Deployment"),
        ("apply", "Service"),
        ("patch", "ModelDeployment/status"),
    ]
    assert api.objects[("ModelDeployment", "llm", "m")]["status"]["phase"] == "Pending"
    before = len(api.writes)
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    assert api.writes[before:] == []


async def test_after_a_restart_children_are_looked_up_not_reapplied() -> None:
    api, store = setup()
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    restarted = Store()  # the MD's watch event came first; its children's have not yet
    restarted.model_deployments[KEY] = api.objects[("ModelDeployment", "llm", "m")]
    before = len(api.writes)
    await reconcile(KEY, api=api, store=restarted, settings=SETTINGS)
    assert api.writes[before:] == []
    assert set(restarted.children[KEY]) == {"Deployment", "Service"}


async def test_a_failed_apply_is_reported_in_status_and_retried() -> None:
    api, store = setup()
    api.fail_apply["Deployment"] = KubeError(422, "HTTP 422 Invalid: spec.template: bad")
    with pytest.raises(KubeError):
        await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    status = api.objects[("ModelDeployment", "llm", "m")]["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyFailed")
    assert "spec.template: bad" in degraded["message"]


async def test_a_terminating_namespace_gets_no_status_write() -> None:
    api, store = setup()
    api.fail_apply["Service"] = KubeError(403, "forbidden: because it is being terminated")
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    assert "status" not in api.objects[("ModelDeployment", "llm", "m")]


async def test_deleted_or_deleting_objects_are_left_to_the_garbage_collector() -> None:
    api, store = setup()
    store.model_deployments[KEY]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    await reconcile(("llm", "gone"), api=api, store=store, settings=SETTINGS)
    assert api.writes == []


async def test_a_deleted_pdb_leaves_the_store() -> None:
    api, store = setup(replicas=2)
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    assert "PodDisruptionBudget" in store.children[KEY]
    store.model_deployments[KEY] = api.objects[("ModelDeployment", "llm", "m")] | {
        "spec": md(replicas=1)["spec"]
    }
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    assert "PodDisruptionBudget" not in store.children[KEY]
    assert ("PodDisruptionBudget", "llm", "m") not in api.objects
    assert (
        summarize_child(api.objects[("Deployment", "llm", "m")]).config_hash
        == store.children[KEY]["Deployment"].config_hash
    )


class ApplyRecordingAPI(FakeKubeAPI):
    """Answers an apply as the API server does: with a uid and the operator's Apply entry in
    managedFields (every field it sent; lists atomic, as in a real field set's leaves)."""

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        applied = await super().apply(manifest)
        meta = applied["metadata"]
        meta["uid"] = f"uid-{applied['kind']}"
        fields = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
        meta["managedFields"] = [
            {
                "manager": self.field_manager,
                "operation": "Apply",
                "time": "2026-11-28T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": field_set(fields),
            }
        ]
        self.objects[(applied["kind"], meta["namespace"], meta["name"])] = applied
        return applied


def field_set(value: Any) -> Any:
    if isinstance(value, dict):
        return {f"f:{k}": field_set(v) for k, v in value.items()}
    return {}


async def test_the_watch_event_after_an_apply_finds_its_digest_computed() -> None:
    from gptoss_operator.observed import owned_digest

    api, store = ApplyRecordingAPI(), Store()
    api.put(md())
    store.model_deployments[KEY] = md()
    await reconcile(KEY, api=api, store=store, settings=SETTINGS)
    digests = store.owned_digests
    assert (digests.misses, digests.hits) == (2, 0)  # the Deployment and the Service, once each
    for kind in ("Deployment", "Service"):
        event = api.objects[(kind, "llm", "m")]  # what the watch then delivers
        state = summarize_child(event, digests)
        assert state.owned == owned_digest(event, api.field_manager) is not None
        assert state == store.children[KEY][kind]
    assert (digests.misses, digests.hits) == (2, 2)
