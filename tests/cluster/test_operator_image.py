"""The operator/router image (runtime-image/operator.Dockerfile), built and run for real.

Built with podman on a Debian base made by mmdebstrap (devtools/images.py, the build step of
`python -m devtools.operator_image`): no container registry is reachable here. Then run the way a hardened pod runs it: read-only root file
system, uid 65532, every capability dropped, the process as PID 1 without an init.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.cluster import REPO, LocalCluster, wait_for
from devtools.images import Podman, missing_tools, missing_tools_message
from devtools.operator_image import Build, build
from devtools.ports import free_port

# The first test also pays for the build: on a fresh machine the Debian base (mmdebstrap) plus
# the image build took about 400 s on a loaded 2-core machine, close to the default 600 s.
pytestmark = pytest.mark.timeout(1500)
IMAGE = "localhost/gptoss-operator:pytest"
HARDENED = ("--read-only", "--user", "65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    missing = missing_tools()
    if missing:
        # Never a skip: .ci/run installs these (apt-get), so their absence is a broken machine.
        pytest.fail(missing_tools_message(missing), pytrace=False)
    podman = Podman.create(tmp_path_factory.mktemp("podman"))
    try:
        # The build step of `python -m devtools.operator_image` (test_real_node.py runs the
        # whole command); here the image stays in podman's storage to be run.
        built = build(podman, IMAGE)
        base = "cached" if built.base.built_seconds is None else f"built in {built.base.built_seconds:.0f} s"
        print(
            f"base rootfs: {base}; import + build {built.seconds:.0f} s;"
            f" image {podman.image_size(IMAGE) / 1e6:.0f} MB"
        )
        yield built
    finally:
        podman.run("rm", "--all", "--force", check=False)
        podman.run("system", "reset", "--force", check=False)


def _inspect(podman: Podman, what: str, name: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman.run(what, "inspect", name).stdout)
    return data[0]


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def _stop_cleanly(podman: Podman, name: str) -> float:
    """`podman stop` (SIGTERM, SIGKILL after 20 s): the exit code must be 0 and quick."""
    start = time.monotonic()
    podman.run("stop", "--time", "20", name)
    took = time.monotonic() - start
    state = _inspect(podman, "container", name)["State"]
    logs = podman.run("logs", name, check=False)
    assert state["ExitCode"] == 0, f"exit code {state['ExitCode']}:\n{logs.stdout}\n{logs.stderr}"
    assert took < 10, f"took {took:.1f} s to stop: SIGTERM was not handled"
    return took


def test_image_metadata_and_help(built: Build) -> None:
    config = _inspect(built.podman, "image", IMAGE)["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["gptoss-operator"]
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    labels = config["Labels"]
    for key in ("title", "description", "licenses", "version", "revision", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.base.name"].startswith("localhost/gptoss-base:")
    out = built.podman.run("run", "--rm", *HARDENED, IMAGE, "--help").stdout
    for command in ("run", "plan", "crds", "router"):
        assert f"    {command} " in out
    # The CRDs printed from inside the image are the ones in the repository.
    crds = built.podman.run("run", "--rm", *HARDENED, IMAGE, "crds").stdout
    printed = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(crds) if doc}
    on_disk = {
        doc["metadata"]["name"]: doc
        for f in sorted((REPO / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(f.read_text())
    }
    assert printed == on_disk


def test_router_serves_read_only_as_non_root_and_stops_on_sigterm(built: Build, tmp_path: Path) -> None:
    # A vLLM simulator on the host's loopback as the backend; the router container shares the
    # host's network, so a completion goes client -> router (in the image) -> simulator.
    upstream_port, port = free_port(), free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "gptoss_operator.simulators.vllm", "--host", "127.0.0.1",
         "--port", str(upstream_port), "--served-model-name", "openai/gpt-oss-20b"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    config = tmp_path / "router.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "routes": [
                    {
                        "model": "gpt-oss-20b",
                        "backends": [
                            {
                                "name": "local",
                                "cluster": {
                                    "endpoints": [f"http://127.0.0.1:{upstream_port}"],
                                    "model": "openai/gpt-oss-20b",
                                },
                            }
                        ],
                    }
                ],
            }
        )
    )
    config.chmod(0o644)
    name = f"router-{port}"
    try:
        built.podman.run(
            "run", "--detach", "--name", name, *HARDENED, "--network=host",
            f"--volume={config}:/etc/router/config.yaml:ro",
            IMAGE, "router", "--config", "/etc/router/config.yaml", "--host", "127.0.0.1", "--port", str(port),
        )  # fmt: skip
        wait_for(
            lambda: _http_status(f"http://127.0.0.1:{port}/readyz") == 200 or _exited(built.podman, name),
            timeout=60,
            what="/readyz of the router container",
        )
        logs = built.podman.run("logs", name, check=False)
        assert not _exited(built.podman, name), f"the router exited:\n{logs.stdout}\n{logs.stderr}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert json.loads(resp.read())["routes"] == ["gpt-oss-20b"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(
                {"model": "gpt-oss-20b", "messages": [{"role": "user", "content": "hi"}]}
            ).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            completion = json.loads(resp.read())
        assert completion["object"] == "chat.completion"
        assert completion["choices"][0]["message"]["role"] == "assistant"
        top = built.podman.run("top", name, "user", "pid", "args").stdout
        assert "65532" in top, top  # uid 65532
        assert " 1 " in top, top  # the router is PID 1, no init
        _stop_cleanly(built.podman, name)
    finally:
        built.podman.run("rm", "--force", name, check=False)
        upstream.terminate()
        upstream.wait(timeout=10)


def _exited(podman: Podman, name: str) -> bool:
    return bool(_inspect(podman, "container", name)["State"]["Status"] == "exited")


def test_operator_runs_against_the_cluster_and_stops_on_sigterm(
    built: Build, cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    cluster.install_crds()
    kubeconfig = cluster.inline_kubeconfig(tmp_path / "kubeconfig")
    kubeconfig.chmod(0o644)  # a throw-away test cluster's credentials, read by uid 65532
    port = free_port()
    name = f"operator-{port}"
    built.podman.run(
        "run", "--detach", "--name", name, *HARDENED, "--network=host",
        f"--volume={kubeconfig}:/etc/gptoss/kubeconfig:ro", "--env=KUBECONFIG=/etc/gptoss/kubeconfig",
        IMAGE, "run", "--namespace", namespace, f"--metrics-port={port}", "--liveness-port=0",
    )  # fmt: skip
    try:
        wait_for(
            lambda: _http_status(f"http://127.0.0.1:{port}/metrics") == 200,
            timeout=60,
            what="the operator container's /metrics",
        )
        cluster.kubectl(
            "apply", "-n", namespace, "-f", str(REPO / "examples" / "modeldeployment-20b-l4-cached.yaml")
        )
        wait_for(
            lambda: cluster.get("-n", namespace, "modeldeployment/oss-20b").get("status", {}).get("plan"),
            timeout=60,
            what=f"a plan from the operator in the image:\n{built.podman.run('logs', name, check=False).stderr[-3000:]}",
        )
        # Its first child: the Job that fills the weight cache.
        wait_for(
            lambda: (
                cluster.kubectl("get", "-n", namespace, "job/oss-20b-download", check=False).returncode == 0
            ),
            timeout=60,
            what="the download Job made by the operator in the image",
        )
        _stop_cleanly(built.podman, name)
    finally:
        built.podman.run("rm", "--force", name, check=False)


def test_a_podman_reset_leaves_other_work_dirs_usable(tmp_path: Path) -> None:
    """Each work dir's podman keeps its runtime files to itself: a test cleaning up its work dir
    (`podman system reset`) while another test worker builds must not pull the floor from under
    that build (podman's default, /run/libpod, is shared by every podman on the machine)."""
    cleaning, building = Podman.create(tmp_path / "cleaning"), Podman.create(tmp_path / "building")
    for podman in (cleaning, building):
        podman.run("images")
    cleaning.run("system", "reset", "--force")
    assert (building.workdir / "tmp" / "alive").exists()
    assert not (cleaning.workdir / "tmp" / "alive").exists()
    building.run("images")
