#!/usr/bin/env bash
# Build the argocd CLI from its Go module (kind/argocd) into a cache directory keyed by the
# build inputs, and print that directory. Used by the Argo CD health-check tests
# (`argocd admin settings resource-overrides health` runs the checks with Argo CD's own Lua
# runtime, no server needed; docs/gitops.md).
#
#   kind/build-argocd.sh            build if needed, print the directory holding `argocd`
#   kind/build-argocd.sh --print    print the directory the current inputs map to (no build)
#
# Kept apart from kind/build.sh: it is the slowest build here (minutes, see docs/gitops.md)
# and only the Argo CD tests need it, so changing its pin never rebuilds the control plane.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${GPTOSS_KIND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gptoss-kind}
ARGOCD_VERSION=v3.2.11

inputs_hash() {
  {
    go version
    cat "$here/build-argocd.sh" "$here/argocd/go.mod" "$here/argocd/go.sum" "$here/argocd/main.go"
  } | sha256sum | cut -c1-16
}

bindir="$cache_root/argocd-$(inputs_hash)"
if [[ "${1:-}" == "--print" ]]; then
  echo "$bindir"
  exit 0
fi
if [[ -x "$bindir/argocd" && -f "$bindir/.complete" ]]; then
  echo "$bindir"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build-argocd.lock"
flock 9
if [[ -f "$bindir/.complete" ]]; then # another process built it while we waited
  echo "$bindir"
  exit 0
fi
grep -qE "^require github.com/argoproj/argo-cd/v3 $ARGOCD_VERSION$" "$here/argocd/go.mod" || {
  echo "build-argocd.sh: kind/argocd/go.mod does not pin argo-cd $ARGOCD_VERSION" >&2
  exit 1
}

# As in kind/build.sh: only the pinned modules, no toolchain download, no checksum database.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOSUMDB=off GOFLAGS="-trimpath -mod=readonly -buildvcs=false"
stage=$(mktemp -d "$cache_root/.stage-argocd.XXXXXX")
trap 'rm -rf "$stage"' EXIT
printf '[kind/build-argocd %s] argocd %s\n' "$(date +%H:%M:%S)" "$ARGOCD_VERSION" >&2
(cd "$here/argocd" && go build -o "$stage/argocd" -ldflags "-s -w \
  -X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v} \
  -X github.com/argoproj/argo-cd/v3/common.gitTreeState=clean" .)
touch "$stage/.complete"
rm -rf "$bindir"
mv "$stage" "$bindir"
trap - EXIT
printf '[kind/build-argocd %s] built into %s\n' "$(date +%H:%M:%S)" "$bindir" >&2
echo "$bindir"
