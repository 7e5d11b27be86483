"""Kubernetes API credentials shared by the operator and the router, without kopf.

``Credentials`` is plain data: the server URL, the CA, a token (or a token file, re-read per
call because bound service-account tokens rotate) and a client certificate, each as a path or
as inline data the way a kubeconfig's ``*-data`` fields hold it. ``ssl_context()`` builds the
TLS context. Python's ``ssl`` module loads a client key pair only from files, so inline key
material is written to a 0600 temporary file, loaded, and unlinked before ``ssl_context``
returns: no key outlives that call on disk, whatever happens to the process afterwards
(even SIGKILL, since the file is already gone while the process runs).

The operator gets its ``Credentials`` from kopf's login (``controller.handlers``); the router
reads a kubeconfig or the pod's service account here (``from_kubeconfig``, ``in_cluster``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class CredentialsError(Exception):
    """A kubeconfig or the in-cluster environment cannot give usable credentials."""


@dataclass(frozen=True)
class Credentials:
    """How to reach the API server: file paths, or inline data as a kubeconfig's ``*-data``
    fields hold it (base64 of the PEM; plain PEM is accepted too). Secrets stay out of repr."""

    server: str
    ca_path: str | None = None
    ca_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_path: str | None = None
    certificate_path: str | None = None
    certificate_data: bytes | None = field(default=None, repr=False)
    private_key_path: str | None = None
    private_key_data: bytes | None = field(default=None, repr=False)
    insecure: bool = False

    def ssl_context(self) -> ssl.SSLContext | bool:
        """A verifying context, or False (no verification) for ``insecure``."""
        if self.insecure:
            return False
        ctx = ssl.create_default_context(
            cafile=self.ca_path, cadata=pem(self.ca_data).decode() if self.ca_data else None
        )
        if self.certificate_data is not None or self.private_key_data is not None:
            cert_data = self.certificate_data or _read(self.certificate_path)
            key_data = self.private_key_data or _read(self.private_key_path)
            # ssl loads a client key pair only from files: write them 0600, load, delete at
            # once, so no key material outlives this call on disk.
            with private_file(pem(cert_data)) as cert, private_file(pem(key_data)) as key:
                ctx.load_cert_chain(cert, key)
        elif self.certificate_path and self.private_key_path:
            ctx.load_cert_chain(self.certificate_path, self.private_key_path)
        return ctx


def _read(path: str | None) -> bytes:
    if path is None:
        raise CredentialsError("a client certificate needs both a certificate and a key")
    with open(path, "rb") as f:
        return f.read()


def pem(data: bytes) -> bytes:
    """Kubeconfig ``*-data`` fields are base64 of the PEM text (kopf passes them on as they
    are); PEM given directly is taken as it is, as kopf's own client does."""
    stripped = data.strip()
    return stripped if stripped.startswith(b"-----BEGIN ") else base64.b64decode(stripped)


@contextlib.contextmanager
def private_file(data: bytes) -> Iterator[str]:
    """``data`` in a new 0600 file (mkstemp) that is unlinked when the block exits."""
    fd, path = tempfile.mkstemp(prefix="gptoss-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        os.unlink(path)


def from_kubeconfig(path: str) -> Credentials:
    """The current context of a kubeconfig: server, CA, and a token or client certificate.
    Relative file paths are relative to the kubeconfig's directory (kubectl's rule)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        ctx_name = doc["current-context"]
        context = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster: dict[str, Any] = next(
            c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"]
        )
        user: dict[str, Any] = next(
            (u["user"] for u in doc.get("users") or [] if u["name"] == context.get("user")), {}
        )
        server = str(cluster["server"]).rstrip("/")
    except (OSError, KeyError, StopIteration, TypeError, yaml.YAMLError) as e:
        raise CredentialsError(f"cannot use kubeconfig {path}: {type(e).__name__} {e}") from None
    base = os.path.dirname(os.path.abspath(path))

    def path_of(value: Any) -> str | None:
        return None if value is None else os.path.join(base, str(value))

    def data_of(value: Any) -> bytes | None:
        return None if value is None else str(value).encode()

    return Credentials(
        server=server,
        ca_path=path_of(cluster.get("certificate-authority")),
        ca_data=data_of(cluster.get("certificate-authority-data")),
        token=user.get("token"),
        token_path=path_of(user.get("tokenFile")),
        certificate_path=path_of(user.get("client-certificate")),
        certificate_data=data_of(user.get("client-certificate-data")),
        private_key_path=path_of(user.get("client-key")),
        private_key_data=data_of(user.get("client-key-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )


def in_cluster(service_account_dir: str = SERVICE_ACCOUNT_DIR) -> Credentials:
    """The pod's service account: API server from the environment, CA and token from files."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise CredentialsError("not running in a pod (KUBERNETES_SERVICE_HOST unset) and no kubeconfig given")
    host = f"[{host}]" if ":" in host else host
    return Credentials(
        server=f"https://{host}:{port}",
        ca_path=os.path.join(service_account_dir, "ca.crt"),
        token_path=os.path.join(service_account_dir, "token"),
    )
