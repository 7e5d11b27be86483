"""Kubernetes API credentials shared by the operator and the router, without kopf.

``Credentials`` is plain data: the server URL, the CA, a token (or a token file, re-read per
call because bound service-account tokens rotate) and a client certificate, each as a path or
as inline data the way a kubeconfig's ``*-data`` fields hold it. ``ssl_context()`` builds the
TLS context. Python's ``ssl`` module loads a client key pair only from files, so inline key
material is written to a 0600 temporary file, loaded, and unlinked before ``ssl_context``
returns: no key outlives that call on disk, whatever happens to the process afterwards
(even SIGKILL, since the file is already gone while the process runs).

Both the operator (its kopf login handler and its write client) and the router read a
kubeconfig or the pod's service account here (``load``, ``from_kubeconfig``, ``in_cluster``).
:class:`TokenSource` is how a long-running client keeps a valid bearer token: a token file is
re-read when it changes (the kubelet rotates bound service-account tokens hourly), a kubeconfig
``exec`` credential plugin (how EKS, GKE and AKS kubeconfigs authenticate) is run again when
its token expires, and ``refresh=True`` (after a 401) re-reads whatever the source is.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
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
class ExecPlugin:
    """A kubeconfig ``users[].user.exec`` entry: a command printing an ``ExecCredential``
    (client.authentication.k8s.io, https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins)."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"


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
    exec_plugin: ExecPlugin | None = None

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
        exec_plugin=_exec_plugin(user.get("exec"), base),
    )


def _exec_plugin(spec: Any, base: str) -> ExecPlugin | None:
    if not spec:
        return None
    command = str(spec["command"])
    # client-go: a command with a path separator is relative to the kubeconfig's directory;
    # a bare name is looked up on PATH.
    if os.sep in command and not os.path.isabs(command):
        command = os.path.join(base, command)
    return ExecPlugin(
        command=command,
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=tuple((str(e["name"]), str(e["value"])) for e in spec.get("env") or ()),
        api_version=str(spec.get("apiVersion") or "client.authentication.k8s.io/v1"),
    )


def load(kubeconfig: str | None = None) -> Credentials:
    """The pod's service account when running in a pod (KUBERNETES_SERVICE_HOST set and a
    token mounted) and no kubeconfig is named; else the kubeconfig (argument, $KUBECONFIG's
    first file, ~/.kube/config)."""
    path = kubeconfig or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    in_pod = os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
        os.path.join(SERVICE_ACCOUNT_DIR, "token")
    )
    if not path and in_pod:
        return in_cluster()
    return from_kubeconfig(path or os.path.expanduser("~/.kube/config"))


@dataclass(frozen=True)
class Token:
    value: str | None
    expires: dt.datetime | None = None  # UTC; None: no known expiry


class TokenSource:
    """The current bearer token of ``credentials``, re-read only when it may have changed.

    A token file is re-read when its inode, size or mtime changes (the kubelet writes a new
    file and swaps a symlink, so the inode changes); an exec plugin is run again within a
    minute of its token's ``expirationTimestamp``; ``refresh=True`` forces both."""

    # Run the plugin again this long before the expiry it announced, so that no request goes
    # out with a token about to expire in flight.
    EXPIRY_MARGIN = dt.timedelta(seconds=60)

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._cached: Token | None = None
        self._file_stamp: tuple[int, int, int] | None = None
        self._lock = asyncio.Lock()

    async def token(self, *, refresh: bool = False) -> Token:
        c = self.credentials
        if c.exec_plugin is not None:
            async with self._lock:
                cached = self._cached
                if refresh or cached is None or _expired(cached, self.EXPIRY_MARGIN):
                    cached = self._cached = await run_exec_plugin(c.exec_plugin)
                return cached
        if c.token_path is not None:
            st = os.stat(c.token_path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._cached
            if refresh or cached is None or stamp != self._file_stamp:
                with open(c.token_path, encoding="utf-8") as f:
                    cached = self._cached = Token(f.read().strip() or None)
                self._file_stamp = stamp
            return cached
        return Token(c.token)


def _expired(token: Token, margin: dt.timedelta) -> bool:
    return token.expires is not None and dt.datetime.now(dt.UTC) + margin >= token.expires


async def run_exec_plugin(plugin: ExecPlugin) -> Token:
    """Run the plugin and return the token in its ExecCredential's status."""
    # KUBERNETES_EXEC_INFO tells the plugin what client-go would: non-interactive, which API.
    info = {"apiVersion": plugin.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    env = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    try:
        proc = await asyncio.create_subprocess_exec(
            plugin.command,
            *plugin.args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except (OSError, TimeoutError) as e:
        raise CredentialsError(f"exec credential plugin {plugin.command}: {type(e).__name__}: {e}") from None
    if proc.returncode != 0:
        # stderr is the plugin's own diagnostics (never the credential, which goes to stdout).
        raise CredentialsError(
            f"exec credential plugin {plugin.command} exited {proc.returncode}: {err.decode()[-500:]}"
        )
    return parse_exec_credential(out)


def parse_exec_credential(output: bytes) -> Token:
    """``status.token`` and ``status.expirationTimestamp`` of an ExecCredential."""
    try:
        status = json.loads(output)["status"]
        token = str(status["token"])
        stamp = status.get("expirationTimestamp")
        expires = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # Never echo the output: it is the credential.
        raise CredentialsError(
            f"exec credential plugin printed no usable ExecCredential ({type(e).__name__})"
        ) from None
    return Token(token, expires)


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
