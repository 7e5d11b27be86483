"""Build and run this project's OCI images with podman, without Docker or a container registry.

The base image is made from Debian packages by mmdebstrap (no registry holds a base image we
could pull here) and cached as a root file system tarball outside the repository, keyed by
everything that goes into it. Podman gets its own configuration and storage in a work
directory, so nothing system-wide changes:

- ``runtime = "runc"``: crun refuses cgroup v1 "hybrid" hosts ("cgroups in hybrid mode not
  supported"); runc runs there.
- ``default_ulimits``: podman's defaults exceed what a sandboxed host lets a process set
  ("setrlimit RLIMIT_NOFILE: Operation not permitted").
- The host's CA bundle is mounted into builds (never baked into an image): where TLS to the
  package registries is re-signed by a local CA, pip inside a build fails certificate checks
  without it.
- ``--network host`` for builds: pip reaches the package index the way the host does.

See docs/images.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.cluster import REPO

OPERATOR_DOCKERFILE = REPO / "runtime-image" / "operator.Dockerfile"
VLLM_DOCKERFILE = REPO / "runtime-image" / "vllm.Dockerfile"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# The base: Debian 12's Python 3.11 (/usr/bin/python3) and nothing else a Python app needs.
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
DEBIAN_MIRROR = os.environ.get("GPTOSS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_SECURITY = os.environ.get("GPTOSS_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
# Each is also the name of the Debian package that provides it (.ci/run installs them).
REQUIRED_TOOLS = ("podman", "mmdebstrap", "runc")

# tmp_dir: podman's default for root is /run/libpod, shared by every podman on the machine
# whatever its storage, and `podman system reset` (how a test cleans up its work dir) deletes it.
# A reset by one test worker while the other started a build failed that build with "creating
# runtime status file: open /run/libpod/alive: no such file or directory". Each work dir gets its own.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp_dir}"
"""


def cache_root() -> Path:
    return Path(os.environ.get("GPTOSS_IMAGES_CACHE", Path.home() / ".cache" / "gptoss-images"))


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def missing_tools_message(missing: list[str]) -> str:
    """One line: what is missing and the Debian packages that provide it."""
    return (
        f"{', '.join(missing)} not found: install the Debian packages (apt-get install {' '.join(missing)})"
    )


def _mirrors() -> list[str]:
    return [
        f"deb {DEBIAN_MIRROR} {SUITE} main",
        f"deb {DEBIAN_MIRROR} {SUITE}-updates main",
        f"deb {DEBIAN_SECURITY} {SUITE}-security main",
    ]


def base_key() -> str:
    """The cache key of the base root file system: suite, packages, sources and mmdebstrap."""
    version = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True, check=True).stdout
    text = "\n".join([SUITE, *BASE_PACKAGES, *_mirrors(), version.strip(), "minbase"])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BaseRootfs:
    tarball: Path
    key: str
    built_seconds: float | None  # None: taken from the cache


def base_rootfs() -> BaseRootfs:
    """The Debian base as a tarball, built by mmdebstrap on first use (about 40 s), then cached."""
    key = base_key()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    tarball = root / f"base-{SUITE}-{key}.tar"
    with (root / ".base.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent callers wait for one build
        if tarball.exists():
            return BaseRootfs(tarball, key, None)
        partial = tarball.with_suffix(".partial.tar")
        start = time.monotonic()
        subprocess.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--quiet",
                f"--include={','.join(BASE_PACKAGES)}",
                # No apt lists or caches in the image: they are only needed to install more.
                "--customize-hook=rm -rf $1/var/lib/apt/lists/* $1/var/cache/apt/*",
                SUITE,
                str(partial),
                *_mirrors(),
            ],
            check=True,
            capture_output=True,
        )
        partial.rename(tarball)
        return BaseRootfs(tarball, key, time.monotonic() - start)


@dataclass(frozen=True)
class Podman:
    """podman with a configuration and storage of its own under ``workdir``."""

    workdir: Path

    @classmethod
    def create(cls, workdir: Path) -> Podman:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "containers.conf").write_text(CONTAINERS_CONF.format(tmp_dir=workdir / "tmp"))
        (workdir / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{workdir}/graph"\nrunroot = "{workdir}/run"\n'
        )
        return cls(workdir)

    @property
    def env(self) -> dict[str, str]:
        return os.environ | {
            "CONTAINERS_CONF": str(self.workdir / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.workdir / "storage.conf"),
            # Registries are never reached: every image here is local.
            "CONTAINERS_REGISTRIES_CONF": str(self.workdir / "registries.conf"),
        }

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        (self.workdir / "registries.conf").touch()
        result = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def import_base(self, base: BaseRootfs) -> str:
        image = f"localhost/gptoss-base:{SUITE}-{base.key}"
        self.run("import", "--change", 'CMD ["/usr/bin/python3"]', str(base.tarball), image)
        return image

    def build_operator_image(self, base_image: str, tag: str) -> None:
        self.run(
            "build",
            "--pull=never",
            "--network=host",
            "--layers=false",
            f"--build-arg=BASE={base_image}",
            f"--build-arg=REVISION={_git_revision()}",
            f"--volume={HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
            f"--file={OPERATOR_DOCKERFILE}",
            f"--tag={tag}",
            str(REPO),
            timeout=900,
        )

    def image_size(self, image: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def _git_revision() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"
