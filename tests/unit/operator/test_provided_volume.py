"""source.persistentVolumeClaim without a cluster: the spec's validation, the pods' volume and
arguments, decide for each state of the user's claim, and the store that feeds it.

The CRD's CEL rules run only in a real API server (tests/cluster/test_weights_from_a_claim.py); here
the rules are checked for being in the generated CRD with their messages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gptoss_operator.api.crds import all_crds
from gptoss_operator.api.v1alpha1 import (
    VOLUME_PATH_MESSAGE,
    VOLUME_WITH_CACHE_MESSAGE,
    VOLUME_WITH_HUGGINGFACE_MESSAGE,
    ModelDeployment,
    ModelDeploymentSpec,
)
from gptoss_operator.controller.desired import Apply
from gptoss_operator.controller.modeldeployment.decide import decide
from gptoss_operator.controller.modeldeployment.gathered import expected_children
from gptoss_operator.controller.store import Store
from gptoss_operator.manifests.vllm import pod_template
from gptoss_operator.observed import ClaimState, PodState
from gptoss_operator.planning.planner import Refusal, plan_deployment
from gptoss_operator.planning.startup import startup_budget
from gptoss_operator.status import ProvidedVolume
from tests.unit.operator.test_modeldeployment_decide import (
    NOW,
    SETTINGS,
    UNBOUND,
    applied,
    body,
    conditions,
    converged,
    created_ago,
    deleted,
    gathered,
)

VOLUME = {"persistentVolumeClaim": {"claimName": "gpt-oss-weights", "path": "models/gpt-oss-20b"}}


def spec(**source: Any) -> dict[str, Any]:
    return {"model": "gpt-oss-20b", "gpu": {"type": "L4"}, "source": source}


def md(source: dict[str, Any] = VOLUME) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {"metadata": {"name": "m", "namespace": "llm", "uid": "u-1"}, "spec": spec(**source)}
    )


# ---------------------------------------------------------------------------- the model


class TestValidation:
    def test_claim_name_and_path_parse(self) -> None:
        source = ModelDeploymentSpec.model_validate(spec(**VOLUME)).source
        assert source.persistent_volume_claim is not None
        assert source.persistent_volume_claim.claim_name == "gpt-oss-weights"
        assert source.persistent_volume_claim.path == "models/gpt-oss-20b"
        assert source.weights_on_volume

    def test_the_path_defaults_to_the_volume_root(self) -> None:
        source = ModelDeploymentSpec.model_validate(
            spec(persistentVolumeClaim={"claimName": "w"})
        ).source.persistent_volume_claim
        assert source is not None
        assert source.path == ""

    @pytest.mark.parametrize("path", ["/models", "..", "../other", "models/../../etc", "a/.."])
    def test_a_path_leaving_the_volume_is_refused(self, path: str) -> None:
        with pytest.raises(ValidationError, match="must be relative"):
            ModelDeploymentSpec.model_validate(spec(persistentVolumeClaim={"claimName": "w", "path": path}))

    @pytest.mark.parametrize("path", ["models/gpt-oss-20b", "..weights", "a/b..c/d", "v1.2"])
    def test_dots_inside_a_name_are_fine(self, path: str) -> None:
        ModelDeploymentSpec.model_validate(spec(persistentVolumeClaim={"claimName": "w", "path": path}))

    def test_a_claim_needs_a_name(self) -> None:
        with pytest.raises(ValidationError, match="claimName"):
            ModelDeploymentSpec.model_validate(spec(persistentVolumeClaim={"claimName": ""}))

    def test_with_a_cache_it_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="exclude each other"):
            ModelDeploymentSpec.model_validate(spec(**VOLUME, cache={}))

    @pytest.mark.parametrize(
        "hf",
        [
            {"repo": "openai/gpt-oss-20b"},
            {"revision": "abc123"},
            {"tokenSecretRef": {"name": "h", "key": "t"}},
        ],
    )
    def test_with_a_huggingface_setting_it_is_refused(self, hf: dict[str, Any]) -> None:
        with pytest.raises(ValidationError, match="must be left unset"):
            ModelDeploymentSpec.model_validate(spec(**VOLUME, huggingface=hf))

    def test_with_default_huggingface_it_parses(self) -> None:
        # What the API server stores once it has filled in defaults.
        ModelDeploymentSpec.model_validate(spec(**VOLUME, huggingface={"revision": "main"}))

    def test_a_spec_without_it_dumps_as_before(self) -> None:
        dumped = ModelDeploymentSpec.model_validate(spec()).model_dump(by_alias=True)
        assert "persistentVolumeClaim" not in dumped["source"]


def crd_source() -> dict[str, Any]:
    (crd,) = [c for c in all_crds() if c["metadata"]["name"] == "modeldeployments.gptoss.dev"]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    source: dict[str, Any] = schema["properties"]["spec"]["properties"]["source"]
    return source


class TestCRD:
    def test_the_field_is_described_for_kubectl_explain(self) -> None:
        pvc = crd_source()["properties"]["persistentVolumeClaim"]
        assert pvc["required"] == ["claimName"]
        assert "read-only" in pvc["properties"]["claimName"]["description"]
        assert "relative to the volume's root" in pvc["properties"]["path"]["description"]
        assert "HF_HUB_OFFLINE" in pvc["description"]

    def test_the_path_rule_is_cel_with_the_models_message(self) -> None:
        path = crd_source()["properties"]["persistentVolumeClaim"]["properties"]["path"]
        (rule,) = path["x-kubernetes-validations"]
        assert rule["message"] == VOLUME_PATH_MESSAGE
        assert "startsWith('/')" in rule["rule"]
        # CEL's matches() is RE2: no lookarounds or backreferences; and the string is bounded so
        # the API server can estimate the rule's cost.
        assert "(?" not in rule["rule"]
        assert path["maxLength"] == 1024

    def test_the_source_rules_name_both_conflicts(self) -> None:
        rules = {r["message"]: r["rule"] for r in crd_source()["x-kubernetes-validations"]}
        assert rules[VOLUME_WITH_CACHE_MESSAGE] == "!has(self.persistentVolumeClaim) || !has(self.cache)"
        hf_rule = rules[VOLUME_WITH_HUGGINGFACE_MESSAGE]
        for field in ("repo", "tokenSecretRef", "revision"):
            assert f"self.huggingface.{field}" in hf_rule
        assert "== 'main'" in hf_rule


# ---------------------------------------------------------------------------- manifests


def template(model: ModelDeployment) -> dict[str, Any]:
    plan = plan_deployment(model.spec, SETTINGS.planner)
    assert not isinstance(plan, Refusal)
    return pod_template(model, plan, SETTINGS, startup_budget(model.spec, SETTINGS.planner))


class TestPods:
    def test_the_claim_is_mounted_read_only(self) -> None:
        pod = template(md())["spec"]
        models = next(v for v in pod["volumes"] if v["name"] == "models")
        assert models == {
            "name": "models",
            "persistentVolumeClaim": {"claimName": "gpt-oss-weights", "readOnly": True},
        }
        (container,) = pod["containers"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert mount == {"name": "models", "mountPath": SETTINGS.planner.model_mount_path, "readOnly": True}

    def test_vllm_loads_the_directory_offline_under_the_public_name(self) -> None:
        (container,) = template(md())["spec"]["containers"]
        args = container["args"]
        assert args[args.index("--model") + 1] == f"{SETTINGS.planner.model_mount_path}/models/gpt-oss-20b"
        assert args[args.index("--served-model-name") + 1] == "gpt-oss-20b"
        assert "--revision" not in args  # a directory has no revision
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["HF_HUB_OFFLINE"] == "1"
        assert "HF_TOKEN" not in env

    def test_the_volume_root_is_the_mount_path(self) -> None:
        (container,) = template(md({"persistentVolumeClaim": {"claimName": "w"}}))["spec"]["containers"]
        args = container["args"]
        assert args[args.index("--model") + 1] == SETTINGS.planner.model_mount_path

    def test_the_startup_budget_has_no_download(self) -> None:
        assert startup_budget(md().spec, SETTINGS.planner).download_seconds == 0
        assert startup_budget(md({}).spec, SETTINGS.planner).download_seconds > 0

    def test_no_cache_children_are_expected(self) -> None:
        assert sorted(expected_children(md())) == ["Deployment", "Service"]


# ---------------------------------------------------------------------------- decide


def with_volume(raw: dict[str, Any], phase: str | None, children: Any = None) -> Any:
    claim = raw["spec"]["source"]["persistentVolumeClaim"]
    return dataclasses.replace(
        gathered(raw, children=children),
        volume=ProvidedVolume(claim=claim["claimName"], path=claim.get("path", ""), phase=phase),
    )


def raw_volume() -> dict[str, Any]:
    return body(model="gpt-oss-20b", gpu={"type": "L4"}, source=dict(VOLUME))


def store_status(raw: dict[str, Any], d: Any) -> None:
    """Put into ``raw`` the status the API server holds after ``d``'s merge patch."""
    assert d.status.patch is not None
    raw["status"] = {k: v for k, v in d.status.patch.items() if v is not None}


class TestDecide:
    def test_a_missing_claim_holds_the_deployment_and_is_degraded(self) -> None:
        d = decide(with_volume(raw_volume(), None), SETTINGS, NOW)
        assert applied(d) == ["Service"]  # no PVC, no Job, no Deployment yet
        assert conditions(d)["WeightsReady"] == ("False", "VolumeNotFound")
        assert conditions(d)["Degraded"] == ("True", "VolumeNotFound")
        assert conditions(d)["Progressing"] == ("False", "WaitingForWeights")
        assert d.status.patch is not None
        assert d.status.patch["phase"] == "Degraded"
        assert d.status.patch["reason"] == "VolumeNotFound"
        weights = next(c for c in d.status.patch["conditions"] if c["type"] == "WeightsReady")
        assert "gpt-oss-weights" in weights["message"]
        assert ("Warning", "VolumeNotFound") in [(e.type, e.reason) for e in d.status.events]

    def test_an_unbound_claim_starts_the_deployment_and_waits(self) -> None:
        # A WaitForFirstConsumer class binds the claim only once a pod uses it: no deadlock.
        d = decide(with_volume(raw_volume(), "Pending"), SETTINGS, NOW)
        assert sorted(applied(d)) == ["Deployment", "Service"]
        assert conditions(d)["WeightsReady"] == ("False", "VolumeNotBound")
        assert conditions(d)["Degraded"] == ("False", "AsExpected")
        assert d.status.patch is not None
        assert (d.status.patch["phase"], d.status.patch["reason"]) == ("Pending", "VolumeNotBound")
        assert not [e for e in d.status.events if e.type == "Warning"]

    @staticmethod
    def held_back(
        phase: str, age: int, provisioner: str | None = None, raw: dict[str, Any] | None = None
    ) -> Any:
        """The vLLM pod refused by the scheduler because the user's claim is not bound."""
        raw = raw if raw is not None else raw_volume()
        g = with_volume(raw, phase)
        volume = dataclasses.replace(g.volume, created=created_ago(age), provisioner=provisioner)
        server = PodState(
            namespace="llm", name="m-7d9f-abcde", node=None, phase="Pending", gpus={"nvidia.com/gpu": 1},
            instance="m", managed=True, component="server", unschedulable=UNBOUND,
        )  # fmt: skip
        return dataclasses.replace(g, volume=volume, server_pods=(server,))

    def test_pods_held_back_by_an_unbound_claim_say_volume_not_bound(self) -> None:
        # Not "Unschedulable" with the scheduler's text, which does not name the claim.
        d = decide(self.held_back("Pending", 30), SETTINGS, NOW)
        assert conditions(d)["WeightsReady"] == ("False", "VolumeNotBound")
        assert conditions(d)["Degraded"] == ("True", "VolumeNotBound")
        assert d.status.patch is not None
        assert (d.status.patch["phase"], d.status.patch["reason"]) == ("Pending", "VolumeNotBound")
        assert [(e.type, e.reason) for e in d.status.events] == [("Warning", "VolumeNotBound")]
        message = d.status.events[0].message
        assert message.startswith("Degraded: PersistentVolumeClaim gpt-oss-weights is Pending, not Bound")
        assert "no provisioner was asked for a volume" in message
        assert "1 of 1 vLLM pods cannot be scheduled until it is" in message
        assert d.recheck_after is None

    def test_a_claim_being_provisioned_holds_the_pods_back_without_a_warning(self) -> None:
        d = decide(self.held_back("Pending", 20, provisioner="ebs.csi.aws.com"), SETTINGS, NOW)
        assert conditions(d)["Degraded"] == ("False", "AsExpected")
        assert d.status.patch is not None
        assert (d.status.patch["phase"], d.status.patch["reason"]) == ("Pending", "VolumeNotBound")
        assert d.status.events == ()
        assert d.recheck_after == 101  # 120 s to provision, 20 gone, one more
        late = decide(self.held_back("Pending", 120, provisioner="ebs.csi.aws.com"), SETTINGS, NOW)
        assert conditions(late)["Degraded"] == ("True", "VolumeNotBound")
        assert "provisioner ebs.csi.aws.com has not provided a volume" in late.status.events[0].message

    def test_the_schedulers_last_word_on_a_claim_that_has_bound_is_no_problem(self) -> None:
        # The pods' condition is from the scheduler's try before the claim bound: it tries again.
        d = decide(self.held_back("Bound", 3600), SETTINGS, NOW)
        assert conditions(d)["WeightsReady"] == ("True", "ProvidedVolume")
        assert conditions(d)["Degraded"] == ("False", "AsExpected")
        assert not [e for e in d.status.events if e.type == "Warning"]

    def test_a_lost_claim_is_degraded_naming_it(self) -> None:
        d = decide(self.held_back("Lost", 3600), SETTINGS, NOW)
        assert conditions(d)["Degraded"] == ("True", "VolumeNotBound")
        assert [(e.type, e.reason) for e in d.status.events] == [("Warning", "VolumeNotBound")]
        assert "PersistentVolumeClaim gpt-oss-weights is Lost" in d.status.events[0].message

    def test_the_claim_binding_clears_it(self) -> None:
        raw = raw_volume()
        stuck = decide(self.held_back("Pending", 30, raw=raw), SETTINGS, NOW)
        store_status(raw, stuck)
        bound = decide(with_volume(raw, "Bound", children=converged(stuck)), SETTINGS, NOW)
        assert conditions(bound)["WeightsReady"] == ("True", "ProvidedVolume")
        assert conditions(bound)["Degraded"] == ("False", "AsExpected")
        # The claim bound (like Downloaded for a cache), and Degraded cleared: no Warning.
        assert [(e.type, e.reason) for e in bound.status.events] == [
            ("Normal", "ProvidedVolume"),
            ("Normal", "AsExpected"),
        ]

    def test_a_bound_claim_is_ready_weights(self) -> None:
        d = decide(with_volume(raw_volume(), "Bound"), SETTINGS, NOW)
        assert sorted(applied(d)) == ["Deployment", "Service"]
        assert conditions(d)["WeightsReady"] == ("True", "ProvidedVolume")
        weights = next(c for c in d.status.patch["conditions"] if c["type"] == "WeightsReady")  # type: ignore[index]
        assert weights["message"] == (
            "the weights are read from directory models/gpt-oss-20b of PersistentVolumeClaim gpt-oss-weights, "
            "mounted read-only"
        )
        mounted = next(
            w.manifest for w in d.writes if isinstance(w, Apply) and w.manifest["kind"] == "Deployment"
        )
        volumes = mounted["spec"]["template"]["spec"]["volumes"]
        assert volumes[0]["persistentVolumeClaim"] == {"claimName": "gpt-oss-weights", "readOnly": True}

    def test_nothing_to_write_once_converged(self) -> None:
        raw = raw_volume()
        first = decide(with_volume(raw, "Bound"), SETTINGS, NOW)
        store_status(raw, first)
        again = decide(with_volume(raw, "Bound", children=converged(first)), SETTINGS, NOW)
        assert again.writes == ()
        assert again.status.patch is None

    def test_the_claim_binding_flips_weights_ready_and_writes_only_status(self) -> None:
        raw = raw_volume()
        first = decide(with_volume(raw, "Pending"), SETTINGS, NOW)
        store_status(raw, first)
        bound = decide(with_volume(raw, "Bound", children=converged(first)), SETTINGS, NOW)
        assert bound.writes == ()
        assert conditions(bound)["WeightsReady"] == ("True", "ProvidedVolume")

    def test_switching_from_the_cache_prunes_the_operators_claim_and_job(self) -> None:
        raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
        children = converged(decide(gathered(raw), SETTINGS, NOW))
        assert sorted(children) == ["Job", "PersistentVolumeClaim", "Service"]
        raw["spec"]["source"] = dict(VOLUME)
        d = decide(with_volume(raw, "Bound", children=children), SETTINGS, NOW)
        assert sorted(deleted(d)) == ["Job", "PersistentVolumeClaim"]
        assert "Deployment" in applied(d)
        assert conditions(d)["WeightsReady"] == ("True", "ProvidedVolume")

    def test_naming_the_caches_own_claim_keeps_it(self) -> None:
        raw = body(model="gpt-oss-20b", gpu={"type": "L4"}, source={"cache": {}})
        children = converged(decide(gathered(raw), SETTINGS, NOW))
        raw["spec"]["source"] = {"persistentVolumeClaim": {"claimName": "m-weights", "path": "gpt-oss-20b"}}
        d = decide(with_volume(raw, "Bound", children=children), SETTINGS, NOW)
        assert deleted(d) == ["Job"]


# ---------------------------------------------------------------------------- store


class TestStore:
    def test_a_claim_is_mapped_to_the_objects_that_name_it(self) -> None:
        store = Store()
        named = {"spec": spec(**VOLUME)}
        store.put_model_deployment(("llm", "a"), named)
        store.put_model_deployment(("llm", "b"), {"spec": spec()})
        store.put_model_deployment(("other", "c"), named)
        assert store.model_deployments_using_claim("llm", "gpt-oss-weights") == [("llm", "a")]
        store.put_model_deployment(("llm", "a"), {"spec": spec()})  # the spec no longer names it
        assert store.model_deployments_using_claim("llm", "gpt-oss-weights") == []
        store.put_model_deployment(("llm", "a"), named)
        store.drop_model_deployment(("llm", "a"))
        assert store.model_deployments_using_claim("llm", "gpt-oss-weights") == []
        assert ("llm", "a") not in store.model_deployments

    def test_a_body_that_does_not_parse_still_names_its_claim(self) -> None:
        store = Store()
        store.put_model_deployment(
            ("llm", "a"), {"spec": {"source": {"persistentVolumeClaim": {"claimName": "w"}}}}
        )
        store.put_model_deployment(("llm", "b"), {"spec": "nonsense"})
        assert store.model_deployments_using_claim("llm", "w") == [("llm", "a")]


class FakeAPI:
    """Counts GETs of claims; answers from ``claims``."""

    def __init__(self, claims: dict[str, dict[str, Any]]) -> None:
        self.claims = claims
        self.gets: list[str] = []

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets.append(f"{kind}/{name}")
        return self.claims.get(name)


def claim_body(name: str, phase: str) -> dict[str, Any]:
    return {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "llm"},
        "status": {"phase": phase},
    }


class TestGather:
    async def gather(self, store: Store, api: FakeAPI) -> ProvidedVolume | None:
        from gptoss_operator.controller.modeldeployment.gather import gather

        got = await gather(("llm", "m"), store, api)  # type: ignore[arg-type]
        assert got is not None
        return got.volume

    def store_with(self, raw: dict[str, Any]) -> Store:
        store = Store()
        store.put_model_deployment(("llm", "m"), raw)
        return store

    async def test_a_claim_the_store_has_costs_no_get(self) -> None:
        store = self.store_with(raw_volume())
        store.claims[("llm", "gpt-oss-weights")] = ClaimState(
            "PersistentVolumeClaim", "gpt-oss-weights", None, phase="Bound"
        )
        api = FakeAPI({})
        assert await self.gather(store, api) == ProvidedVolume(
            "gpt-oss-weights", "models/gpt-oss-20b", "Bound"
        )
        assert api.gets == []

    async def test_a_claim_the_store_lacks_is_read_once(self) -> None:
        store = self.store_with(raw_volume())
        api = FakeAPI({"gpt-oss-weights": claim_body("gpt-oss-weights", "Bound")})
        assert (await self.gather(store, api)) == ProvidedVolume(
            "gpt-oss-weights", "models/gpt-oss-20b", "Bound"
        )
        assert (await self.gather(store, api)) is not None
        assert api.gets == ["PersistentVolumeClaim/gpt-oss-weights"]  # the second pass used the store

    async def test_the_claims_age_and_provisioner_reach_the_decision(self) -> None:
        store = self.store_with(raw_volume())
        pending = claim_body("gpt-oss-weights", "Pending")
        pending["metadata"] |= {
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"},
        }
        volume = await self.gather(store, FakeAPI({"gpt-oss-weights": pending}))
        assert volume == ProvidedVolume(
            "gpt-oss-weights", "models/gpt-oss-20b", "Pending", "2026-01-01T00:00:00Z", "ebs.csi.aws.com"
        )

    async def test_a_missing_claim_is_not_found(self) -> None:
        store = self.store_with(raw_volume())
        volume = await self.gather(store, FakeAPI({}))
        assert volume is not None
        assert volume.phase is None

    async def test_a_hugging_face_source_reads_no_claim(self) -> None:
        api = FakeAPI({})
        assert await self.gather(self.store_with(body()), api) is None
        assert api.gets == []


# ---------------------------------------------------------------------------- the watch


class TestClaimWatch:
    """kopf's PVC events reach the store for every claim, labelled or not, and requeue exactly
    the objects that name the claim when what they would see changed."""

    def handler(self, controller: Any) -> Any:
        (found,) = [
            h.fn
            for h in controller.registry._watching.get_all_handlers()
            if h.selector is not None and h.selector.any_name == "persistentvolumeclaims" and not h.labels
        ]
        return found

    async def test_a_claim_event_requeues_the_objects_naming_it(self) -> None:
        from gptoss_operator.controller.controller import Controller
        from gptoss_operator.metrics import OperatorMetrics

        controller = Controller(SETTINGS, OperatorMetrics())
        on_claim = self.handler(controller)
        controller.store.put_model_deployment(("llm", "uses"), raw_volume())
        controller.store.put_model_deployment(("llm", "other"), body())
        await on_claim(event={"type": "ADDED", "object": claim_body("gpt-oss-weights", "Pending")})
        assert controller.store.claims[("llm", "gpt-oss-weights")].phase == "Pending"
        assert controller.queue.queued() == {("llm", "uses")}
        await controller.queue.get()
        controller.queue.done(("llm", "uses"))
        # A resourceVersion bump that changes nothing the decision reads: no reconcile.
        await on_claim(event={"type": "MODIFIED", "object": claim_body("gpt-oss-weights", "Pending")})
        assert len(controller.queue) == 0
        await on_claim(event={"type": "MODIFIED", "object": claim_body("gpt-oss-weights", "Bound")})
        assert controller.queue.queued() == {("llm", "uses")}
        await controller.queue.get()
        controller.queue.done(("llm", "uses"))
        await on_claim(event={"type": "DELETED", "object": claim_body("gpt-oss-weights", "Bound")})
        assert ("llm", "gpt-oss-weights") not in controller.store.claims
        assert controller.queue.queued() == {("llm", "uses")}


def test_plan_names_the_claim_and_no_download(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    from gptoss_operator.commands import main

    manifest = tmp_path / "md.yaml"
    manifest.write_text(
        "apiVersion: gptoss.dev/v1alpha1\nkind: ModelDeployment\nmetadata: {name: m}\n"
        "spec: {model: gpt-oss-20b, gpu: {type: L4}, source: {persistentVolumeClaim: "
        "{claimName: gpt-oss-weights, path: gpt-oss-20b}}}\n"
    )
    assert main(["plan", "-f", str(manifest)]) == 0
    out = capsys.readouterr().out
    mount = SETTINGS.planner.model_mount_path
    assert (
        f"weights: directory gpt-oss-20b of PersistentVolumeClaim gpt-oss-weights, mounted read-only at {mount}; "
        "no download (HF_HUB_OFFLINE=1)"
    ) in out
    assert f"--model {mount}/gpt-oss-20b --served-model-name gpt-oss-20b" in out
    assert "= download 0 s +" in out


def test_the_example_names_its_own_claim_and_plans() -> None:
    import yaml

    path = Path(__file__).resolve().parents[3] / "examples" / "weights-volume-20b-l4.yaml"
    claim, raw = yaml.safe_load_all(path.read_text())
    assert claim["kind"] == "PersistentVolumeClaim"
    model = ModelDeployment.model_validate(raw)
    source = model.spec.source.persistent_volume_claim
    assert source is not None
    assert source.claim_name == claim["metadata"]["name"]
    # Bound to the volume that holds the weights, never to an empty one a provisioner makes.
    assert (claim["spec"]["storageClassName"], claim["spec"]["volumeName"]) == ("", "gpt-oss-weights")
    plan = plan_deployment(model.spec, SETTINGS.planner)
    assert not isinstance(plan, Refusal)
    assert plan.args[plan.args.index("--model") + 1] == f"{SETTINGS.planner.model_mount_path}/gpt-oss-20b"


class TestStatus:
    """evaluate() with the claim's states the decision cannot tell apart by weights alone."""

    def observation(self, weights: Any, phase: str | None, **extra: Any) -> Any:
        from gptoss_operator.status import Observation

        plan = plan_deployment(md().spec, SETTINGS.planner)
        assert not isinstance(plan, Refusal)
        return Observation(
            name="m", model="gpt-oss-20b", generation=1, desired_replicas=1, selector="", endpoint="e",
            plan=plan, weights=weights, volume=ProvidedVolume("w", "", phase),
        )  # fmt: skip

    def test_a_lost_claim_says_so(self) -> None:
        from gptoss_operator.status import evaluate

        status = evaluate(self.observation("VolumeNotBound", "Lost"), [], NOW)
        weights = next(c for c in status["conditions"] if c["type"] == "WeightsReady")
        assert weights["message"].startswith("PersistentVolumeClaim w is Lost, not Bound")

    def test_a_claim_at_the_volume_root_names_no_directory(self) -> None:
        from gptoss_operator.status import evaluate

        status = evaluate(self.observation("ProvidedVolume", "Bound"), [], NOW)
        weights = next(c for c in status["conditions"] if c["type"] == "WeightsReady")
        assert weights["message"] == "the weights are read from PersistentVolumeClaim w, mounted read-only"

    def test_a_claim_gone_under_a_running_deployment_is_degraded_but_keeps_progress(self) -> None:
        from gptoss_operator.observed import DeploymentState
        from gptoss_operator.status import evaluate

        running = DeploymentState("Deployment", "m", "h", generation=1, observed_generation=1, replicas=1,
                                  ready_replicas=1, updated_replicas=1, available_replicas=1)  # fmt: skip
        obs = dataclasses.replace(self.observation("VolumeNotFound", None), deployment=running)
        status = evaluate(obs, [], NOW)
        by_type = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
        assert by_type["Degraded"] == ("True", "VolumeNotFound")
        assert by_type["Progressing"] == ("False", "Complete")  # not "waiting": it runs
        assert by_type["Ready"] == ("True", "Serving")
