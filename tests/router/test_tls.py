"""The upstream pool's TLS path (hosted providers over https), against simulators behind TLS.

Throw-away PKI made with the openssl CLI: a test CA, a server certificate it signs for
IP:127.0.0.1, one it signs for another name only, and a certificate from a second CA the router
does not trust. The router's trust store is OpenSSL's default one (``ssl.create_default_context``
in ``router/pool.py``), so the router process gets ``SSL_CERT_FILE=<test CA>`` (docs/router.md,
"Upstream TLS").
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.router.conftest import MODEL
from tests.support.procs import Router, Sim, config, external_backend, route

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "over tls"}]


def openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr}"


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=d,
    )  # fmt: skip
    return d / f"{name}.crt", d / f"{name}.key"


def make_server_cert(d: Path, name: str, ca: tuple[Path, Path], san: str) -> tuple[Path, Path]:
    ext = d / f"{name}.ext"
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=d,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", str(ext),
        cwd=d,
    )  # fmt: skip
    return d / f"{name}.crt", d / f"{name}.key"


@dataclass
class TlsSims:
    ca: Path
    good: Sim  # certificate for IP:127.0.0.1 from the trusted CA
    wrong_name: Sim  # trusted CA, but issued for DNS:provider.example only
    untrusted: Sim  # certificate for IP:127.0.0.1 from a CA the router does not trust


@pytest.fixture(scope="module")
def tls_sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSims]:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "test-ca")
    rogue = make_ca(d, "rogue-ca")
    certs = {
        "good": make_server_cert(d, "good", ca, "IP:127.0.0.1"),
        "wrong-name": make_server_cert(d, "wrong-name", ca, "DNS:provider.example"),
        "untrusted": make_server_cert(d, "untrusted", rogue, "IP:127.0.0.1"),
    }
    started: list[Sim] = []
    try:
        for name, (crt, key) in certs.items():
            started.append(Sim(f"tls-{name}", certfile=crt, keyfile=key))
        yield TlsSims(ca[0], *started)
    finally:
        for s in started:
            s.stop()


@pytest.fixture
def sims(tls_sims: TlsSims) -> TlsSims:
    for s in (tls_sims.good, tls_sims.wrong_name, tls_sims.untrusted):
        s.reset()
    return tls_sims


@pytest.fixture
def router(sims: TlsSims, tmp_path: Path) -> Iterator[Router]:
    cfg = config(
        route(MODEL, external_backend("hosted", sims.good)),
        route("wrong-name", external_backend("hosted", sims.wrong_name)),
        route("untrusted", external_backend("hosted", sims.untrusted)),
    )
    r = Router(cfg, workdir=tmp_path, env={"SSL_CERT_FILE": str(sims.ca), "SSL_CERT_DIR": str(tmp_path)})
    try:
        yield r
    finally:
        r.stop()


def test_requests_reach_a_provider_over_verified_tls(router: Router, sims: TlsSims) -> None:
    assert sims.good.url.startswith("https://127.0.0.1:")
    c = router.openai()
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert raw.headers["x-gptoss-backend"] == "hosted"
    assert raw.parse().choices[0].message.content
    chunks = list(c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"
    stats = sims.good.stats()
    assert stats["requests"] == 2
    assert stats["last_body"]["model"] == "openai/gpt-oss-20b"
    # Keep-alive over TLS: the pooled connection is reused for the next requests.
    for _ in range(3):
        assert c.completions.create(model=MODEL, prompt="again").choices[0].text
    assert sims.good.stats()["requests"] == 5


@pytest.mark.parametrize(
    ("model", "which", "reason"),
    [
        ("untrusted", "untrusted", "certificate verify failed: unable to get local issuer certificate"),
        ("wrong-name", "wrong_name", "certificate verify failed: IP address mismatch"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_certificate_that_does_not_verify_is_refused(
    router: Router, sims: TlsSims, model: str, which: str, reason: str, stream: bool
) -> None:
    c = router.openai()
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model=model, messages=MESSAGES, stream=stream)
    assert e.value.status_code == 503
    assert e.value.code == "upstream_failed"
    assert reason in e.value.message, e.value.message
    sim: Sim = getattr(sims, which)
    assert sim.stats()["requests"] == 0, "no request may be sent over an unverified connection"
    # The router keeps serving the verified provider.
    assert c.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
