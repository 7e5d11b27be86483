"""Bearer tokens that change under a running client: rotated token files and exec plugins."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from gptoss_operator.credentials import (
    Credentials,
    CredentialsError,
    TokenSource,
    from_kubeconfig,
    parse_exec_credential,
)


async def test_a_replaced_token_file_is_read_again(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    source = TokenSource(Credentials(server="https://127.0.0.1:6443", token_path=str(token)))
    assert (await source.token()).value == "first"
    # The kubelet's way: write a new file and rename it over the old one (a new inode).
    new = tmp_path / "token.new"
    new.write_text("second\n")
    new.rename(token)
    assert (await source.token()).value == "second"


async def test_an_unchanged_token_file_is_not_read_again(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first")
    source = TokenSource(Credentials(server="https://127.0.0.1:6443", token_path=str(token)))
    await source.token()
    # Same inode, same size, mtime put back: the file looks unchanged, so it is not read...
    st = token.stat()
    token.write_text("other")
    os.utime(token, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (await source.token()).value == "first"
    # ...until a 401 forces a re-read.
    assert (await source.token(refresh=True)).value == "other"


def write_plugin(tmp_path: Path, expires: str | None) -> Path:
    """A real exec credential plugin: counts its runs in a file and prints token-<n>."""
    status: dict[str, str] = {"token": "token-$n"}
    if expires:
        status["expirationTimestamp"] = expires
    doc = json.dumps(
        {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}
    )
    script = tmp_path / "plugin.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(( $(cat "{tmp_path}/runs" 2>/dev/null || echo 0) + 1 )); echo $n > "{tmp_path}/runs"\n'
        '[ "$(echo "$KUBERNETES_EXEC_INFO" | grep -c ExecCredential)" = 1 ] || exit 3\n'
        f"echo '{doc}' | sed \"s/\\$n/$n/\"\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def kubeconfig_with_exec(tmp_path: Path, command: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [
            {
                "name": "u",
                "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": command}},
            }
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_exec_plugin_token_is_cached_until_it_expires(tmp_path: Path) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plugin = write_plugin(tmp_path, later)
    source = TokenSource(from_kubeconfig(str(kubeconfig_with_exec(tmp_path, "./plugin.sh"))))
    first = await source.token()
    assert first.value == "token-1"
    assert first.expires is not None
    assert first.expires > dt.datetime.now(dt.UTC)
    assert (await source.token()).value == "token-1"  # cached
    assert (await source.token(refresh=True)).value == "token-2"  # after a 401
    assert (tmp_path / "runs").read_text().strip() == "2"
    assert plugin.exists()


async def test_exec_plugin_runs_again_once_its_token_is_about_to_expire(tmp_path: Path) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_plugin(tmp_path, soon)
    source = TokenSource(from_kubeconfig(str(kubeconfig_with_exec(tmp_path, "./plugin.sh"))))
    assert (await source.token()).value == "token-1"
    assert (await source.token()).value == "token-2"  # within the 60 s margin: not reused


async def test_a_failing_plugin_is_an_error_without_its_output(tmp_path: Path) -> None:
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\necho secret-token\necho 'no credentials' >&2\nexit 1\n")
    script.chmod(0o700)
    source = TokenSource(from_kubeconfig(str(kubeconfig_with_exec(tmp_path, str(script)))))
    with pytest.raises(CredentialsError, match="exited 1: no credentials") as info:
        await source.token()
    assert "secret-token" not in str(info.value)


def test_unusable_exec_credential_does_not_echo_the_output() -> None:
    with pytest.raises(CredentialsError) as info:
        parse_exec_credential(b'{"status": {"tokn": "abc-secret"}}')
    assert "abc-secret" not in str(info.value)


def test_exec_plugin_fields_from_a_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": "https://k:443"}}],
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "exec": {
                                "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "command": "aws",
                                "args": ["eks", "get-token", "--cluster-name", "x"],
                                "env": [{"name": "AWS_PROFILE", "value": "p"}],
                            }
                        },
                    }
                ],
            }
        )
    )
    plugin = from_kubeconfig(str(path)).exec_plugin
    assert plugin is not None
    assert plugin.command == "aws"  # a bare name is looked up on PATH, as client-go does
    assert plugin.args == ("eks", "get-token", "--cluster-name", "x")
    assert plugin.env == (("AWS_PROFILE", "p"),)
    assert plugin.api_version == "client.authentication.k8s.io/v1beta1"
    assert os.path.isabs(from_kubeconfig(str(kubeconfig_with_exec(tmp_path, "./p.sh"))).exec_plugin.command)  # type: ignore[union-attr]
