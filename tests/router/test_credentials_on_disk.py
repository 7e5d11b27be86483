"""A kubeconfig with an embedded client key leaves no key material on disk: not while the
router runs, not after SIGTERM, not after SIGKILL (the file is gone before either)."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
from pathlib import Path

import pytest

from devtools.ports import free_port
from tests.router.conftest import MODEL
from tests.support.procs import Router, config, route


@pytest.fixture(scope="module")
def client_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    d = tmp_path_factory.mktemp("pki")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=router", "-keyout", "k.pem", "-out", "c.pem"],
        cwd=d, check=True, capture_output=True,
    )  # fmt: skip
    return (d / "c.pem").read_bytes(), (d / "k.pem").read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def start(tmp_path: Path, client_pair: tuple[bytes, bytes]) -> tuple[Router, Path]:
    cert, key = client_pair
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                # Nothing listens there: the watch keeps failing and retrying, the router keeps running.
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {
                            "server": f"https://127.0.0.1:{free_port()}",
                            "certificate-authority-data": b64(cert),
                        },
                    }
                ],
                "users": [
                    {"name": "u", "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}
                ],
            }
        )
    )
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    backend = {
        "name": "local",
        "cluster": {"service": {"name": "vllm", "namespace": "llm"}, "metrics": False},
    }
    cfg = config(route(MODEL, backend), kubernetes={"kubeconfig": str(kubeconfig)})
    router = Router(cfg, workdir=tmp_path, env={"TMPDIR": str(tmpdir)})
    # The credentials are built when the first watch starts; its first failure proves it did.
    router.wait_for(lambda: "endpointslice watch failed" in router.logs(), what="the watch to start")
    return router, tmpdir


def test_no_key_file_while_running_nor_after_sigterm(
    tmp_path: Path, client_pair: tuple[bytes, bytes]
) -> None:
    router, tmpdir = start(tmp_path, client_pair)
    try:
        assert list(tmpdir.iterdir()) == []
    finally:
        router.stop()  # SIGTERM
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert router.proc.returncode == -signal.SIGTERM
    assert list(tmpdir.iterdir()) == []
    assert client_pair[1].decode().splitlines()[1] not in router.logs()


def test_no_key_file_after_sigkill(tmp_path: Path, client_pair: tuple[bytes, bytes]) -> None:
    router, tmpdir = start(tmp_path, client_pair)
    try:
        assert list(tmpdir.iterdir()) == []
        router.proc.send_signal(signal.SIGKILL)
        router.proc.wait(10)
    finally:
        router.stop()
    assert router.proc.returncode == -signal.SIGKILL
    assert list(tmpdir.iterdir()) == []
