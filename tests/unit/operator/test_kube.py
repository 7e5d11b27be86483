"""The pure parts of the API client: resource paths and error classification."""

from __future__ import annotations

import pytest

from gptoss_operator.kube import KubeError, _status_message, resource_path


@pytest.mark.parametrize(
    ("api_version", "kind", "name", "path"),
    [
        ("apps/v1", "Deployment", "m", "/apis/apps/v1/namespaces/llm/deployments/m"),
        ("v1", "Service", "m", "/api/v1/namespaces/llm/services/m"),
        ("v1", "Event", None, "/api/v1/namespaces/llm/events"),
        ("policy/v1", "PodDisruptionBudget", "m", "/apis/policy/v1/namespaces/llm/poddisruptionbudgets/m"),
        (
            "gptoss.dev/v1alpha1",
            "ModelDeployment",
            "m",
            "/apis/gptoss.dev/v1alpha1/namespaces/llm/modeldeployments/m",
        ),
    ],
)
def test_resource_path(api_version: str, kind: str, name: str | None, path: str) -> None:
    assert resource_path(api_version, kind, "llm", name) == path


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="not a kind the operator manages"):
        resource_path("v1", "Secret", "llm", "hf")


def test_errors_are_classified() -> None:
    terminating = KubeError(
        403,
        'HTTP 403 Forbidden: services "m" is forbidden: unable to create new content in namespace x because it is being terminated',
    )
    assert terminating.namespace_terminating
    assert not KubeError(403, "HTTP 403 Forbidden: RBAC says no").namespace_terminating
    assert KubeError(404, "gone").not_found
    assert KubeError(409, "conflict").conflict


def test_status_message_uses_the_api_status_body() -> None:
    body = '{"kind":"Status","reason":"Invalid","message":"spec.replicas: must be >= 0"}'
    assert _status_message(422, body) == "HTTP 422 Invalid: spec.replicas: must be >= 0"
    assert _status_message(502, "<html>bad gateway</html>") == "HTTP 502: <html>bad gateway</html>"
