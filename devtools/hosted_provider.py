"""The hosted-provider simulator (gptoss_operator.simulators.hosted) as a pod of a served cluster.

It stands in for an OpenAI-compatible hosted API behind a RoutePolicy ``external`` backend: it
answers on its pod IP and accepts only the API key mounted from a Secret, so a test sees both
that the router reached it and which key it sent (``GET /admin/stats``).
"""

from __future__ import annotations

from typing import Any

KEY_FILE = "apiKey"


def api_key_secret(name: str, key: str) -> dict[str, Any]:
    """A Secret holding a provider API key under :data:`KEY_FILE`."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {KEY_FILE: key}}


def hosted_provider_pod(
    *,
    model: str,
    secret: str,
    name: str = "provider",
    port: int = 8443,
    key_dir: str = "/var/run/secrets/provider",
) -> dict[str, Any]:
    """A pod labelled ``pod=<name>`` serving ``model`` on ``$(POD_IP):port``, requiring the key in
    Secret ``secret`` (mounted read-only at ``key_dir``)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"pod": name}},
        "spec": {
            "containers": [
                {
                    "name": "provider",
                    "image": "python:3.11-slim",
                    "command": [
                        *("python", "-m", "gptoss_operator.simulators.hosted"),
                        *("--host", "$(POD_IP)", "--port", str(port), "--model", model),
                        *("--api-key-file", f"{key_dir}/{KEY_FILE}"),
                    ],
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "volumeMounts": [{"name": "api-key", "mountPath": key_dir, "readOnly": True}],
                }
            ],
            "volumes": [{"name": "api-key", "secret": {"secretName": secret}}],
        },
    }
