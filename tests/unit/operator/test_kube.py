"""The pure parts of the API client: resource paths and error classification."""

from __future__ import annotations

import base64
import ssl
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gptoss_operator.kube import Credentials, KubeError, _status_message, resource_path


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


def test_status_message_uses_the_api_status_body() -> None:
    body = '{"kind":"Status","reason":"Invalid","message":"spec.replicas: must be >= 0"}'
    assert _status_message(422, body) == "HTTP 422 Invalid: spec.replicas: must be >= 0"
    assert _status_message(502, "<html>bad gateway</html>") == "HTTP 502: <html>bad gateway</html>"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A throw-away CA and a client certificate, as PEM bytes."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-days", "1", "-subj", "/CN=ca", "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", *ec, "-subj", "/CN=admin", "-keyout", "admin.key", "-out", "admin.csr")
    openssl(
        "x509",
        "-req",
        "-in",
        "admin.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "admin.crt",
    )
    return {name: (d / name).read_bytes() for name in ("ca.crt", "admin.crt", "admin.key")}


@pytest.mark.parametrize("encode", [base64.b64encode, lambda pem: pem], ids=["kubeconfig-base64", "pem"])
def test_inline_credentials_load_and_leave_no_key_on_disk(
    pki: dict[str, bytes], encode: Callable[[bytes], bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kubeconfigs made by kind, EKS or GKE carry certificate-authority-data, client-certificate-data
    # and client-key-data: base64 of the PEM, which kopf passes on as it is.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    creds = Credentials(
        server="https://127.0.0.1:6443",
        ca_data=encode(pki["ca.crt"]),
        certificate_data=encode(pki["admin.crt"]),
        private_key_data=encode(pki["admin.key"]),
    )
    ctx = creds.ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "ca"),),)]
    assert list(tmp_path.iterdir()) == []  # the key pair was written only to be loaded


def test_credential_paths_are_used_as_they_are(pki: dict[str, bytes], tmp_path: Path) -> None:
    for name, data in pki.items():
        (tmp_path / name).write_bytes(data)
    creds = Credentials(
        server="https://127.0.0.1:6443",
        ca_path=str(tmp_path / "ca.crt"),
        certificate_path=str(tmp_path / "admin.crt"),
        private_key_path=str(tmp_path / "admin.key"),
    )
    assert isinstance(creds.ssl_context(), ssl.SSLContext)


def test_garbage_inline_data_fails_loudly() -> None:
    with pytest.raises((ValueError, ssl.SSLError)):
        Credentials(server="https://x", ca_data=b"not base64 !!").ssl_context()
