"""Build the operator image the way the tests do, and save it as an OCI archive.

    .venv/bin/python -m devtools.operator_image --output operator-image.tar   # or: make operator-image

podman, with a configuration and storage of its own in a temporary directory, imports the
Debian base (mmdebstrap, cached in ~/.cache/gptoss-images) and builds
runtime-image/operator.Dockerfile on it (devtools/images.py), then `podman save --format
oci-archive` writes the archive and the temporary storage is removed. Nothing system-wide
changes, and no registry is reached.

The image is named as the Helm chart runs it by default, so `kind/cluster load-image` puts it
where the chart's pod finds it: a real node never pulls (kind/README.md "A real node").
tests/cluster/test_real_node.py runs this command for its image; see docs/images.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from devtools.cluster import REPO
from devtools.images import BaseRootfs, Podman, base_rootfs, cache_root, missing_tools, missing_tools_message

CHART = REPO / "charts" / "gpt-oss-operator"


def chart_image() -> str:
    """The image the chart runs by default: its repository at the chart's appVersion."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    return f"{values['image']['repository']}:{values['image']['tag'] or app_version}"


@dataclass(frozen=True)
class Build:
    podman: Podman
    tag: str
    base: BaseRootfs
    seconds: float  # podman import of the base + podman build


def build(podman: Podman, tag: str) -> Build:
    """The operator image in ``podman``'s storage as ``tag``, on the (cached) Debian base."""
    base = base_rootfs()
    start = time.monotonic()
    podman.build_operator_image(podman.import_base(base), tag)
    return Build(podman, tag, base, time.monotonic() - start)


def save(built: Build, output: Path) -> None:
    """``podman save --format oci-archive``; a failed save leaves no half-written ``output``."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        built.podman.run("save", "--format", "oci-archive", "--output", str(partial), built.tag)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def _failure(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):  # mmdebstrap
        stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr
        return f"{' '.join(map(str, error.cmd))} exited {error.returncode}:\n{stderr or ''}"
    return str(error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.operator_image",
        description=(
            "Build the operator/router image (runtime-image/operator.Dockerfile) with podman on a Debian "
            "base made by mmdebstrap, as the tests do, and write it as an OCI archive for "
            "`kind/cluster load-image`. Needs the Debian packages podman, mmdebstrap and runc. "
            "Takes a few minutes; the first run also builds the base (cached in "
            f"{cache_root()}, GPTOSS_IMAGES_CACHE overrides the directory)."
        ),
        epilog="Then: kind/cluster load-image --name NAME ARCHIVE (kind/README.md, 'A real node').",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        metavar="ARCHIVE",
        help="the OCI archive to write (replaced if it exists)",
    )
    parser.add_argument(
        "--tag",
        default=chart_image(),
        help="the image's name in the archive (default: %(default)s, the Helm chart's default image)",
    )
    args = parser.parse_args(argv)
    output: Path = args.output.absolute()
    if output.is_dir():
        print(f"error: {output} is a directory; --output names the archive file", file=sys.stderr)
        return 1
    if not output.parent.is_dir():
        print(f"error: {output.parent} is not a directory", file=sys.stderr)
        return 1
    missing = missing_tools()
    if missing:
        print(f"error: {missing_tools_message(missing)}", file=sys.stderr)
        return 1
    print(f"building {args.tag} with podman (a few minutes) ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    # ignore_cleanup_errors: `podman system reset` has removed the storage; what it leaves
    # behind must not turn a written archive into a failure.
    with tempfile.TemporaryDirectory(prefix="gptoss-operator-image-", ignore_cleanup_errors=True) as work:
        podman = Podman.create(Path(work))
        try:
            built = build(podman, args.tag)
            save(built, output)
        except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            print(f"error: {_failure(e)}", file=sys.stderr)
            return 1
        finally:
            podman.run("system", "reset", "--force", check=False)
    base = "cached" if built.base.built_seconds is None else f"built in {built.base.built_seconds:.0f} s"
    print(
        f"Debian base {base}; import + build {built.seconds:.0f} s; "
        f"build + save {time.monotonic() - started:.0f} s in all"
    )
    print(f"wrote {args.tag} to {output} ({output.stat().st_size / 1e6:.0f} MB, OCI archive)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
