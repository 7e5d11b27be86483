#!/usr/bin/env bash
# Build the local control plane's binaries from Go modules (no downloads besides the Go
# module proxy) into a cache directory keyed by the build inputs, and print that directory.
#
#   kind/build.sh            build if needed, print the bin directory
#   kind/build.sh --print    print the bin directory the current inputs map to (no build)
#
# Outputs: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (one multi-call
# binary, see build/k8s/main.go), etcd, etcdctl-free etcd server, kwok, helm, actionlint, and
# for `kind/cluster up --real-node` the kubelet and the pod sandbox's pause (build/k8s/kubelet,
# build/k8s/pause; same module, same pins).
# Cache: $GPTOSS_KIND_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/gptoss-kind)/bin-<hash>.
# The hash covers every go.mod/go.sum/main.go, this script and `go version`, so a changed
# pin builds a fresh directory and an unchanged one is reused as is.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${GPTOSS_KIND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gptoss-kind}

# Versions stamped into the binaries. They must match the go.mod pins (checked below).
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.21.4
ACTIONLINT_VERSION=v1.7.12

inputs_hash() {
  {
    go version
    cat "$here/build.sh"
    find "$here/build" -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -c1-16
}

bindir="$cache_root/bin-$(inputs_hash)"
if [[ "${1:-}" == "--print" ]]; then
  echo "$bindir"
  exit 0
fi
if [[ -x "$bindir/kube-apiserver" && -f "$bindir/.complete" ]]; then
  echo "$bindir"
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
flock 9
if [[ -f "$bindir/.complete" ]]; then # another process built it while we waited
  echo "$bindir"
  exit 0
fi

require_pin() { # module version file
  grep -qE "^\s*(require )?$1 $2( |$)" "$3" || { echo "build.sh: $3 does not pin $1 $2" >&2; exit 1; }
}
require_pin k8s.io/kubernetes "$K8S_VERSION" "$here/build/k8s/go.mod"
require_pin go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$here/build/etcd/go.mod"
require_pin sigs.k8s.io/kwok "$KWOK_VERSION" "$here/build/tools/go.mod"
require_pin helm.sh/helm/v3 "$HELM_VERSION" "$here/build/tools/go.mod"
require_pin github.com/rhysd/actionlint "$ACTIONLINT_VERSION" "$here/build/tools/go.mod"

# GOTOOLCHAIN=local: a dependency's `go` line must never trigger a toolchain download.
# GOSUMDB=off: sum.golang.org is not reachable here; the committed go.sum files pin every
# module hash and -mod=readonly refuses anything they do not cover.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOSUMDB=off GOFLAGS="-trimpath -mod=readonly -buildvcs=false"
stage=$(mktemp -d "$cache_root/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
log() { printf '[kind/build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

k8s_minor=$(echo "$K8S_VERSION" | cut -d. -f2)
# The version every Kubernetes binary reports (kubectl version, the Node's kubeletVersion).
k8s_ldflags="-s -w \
  -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$k8s_minor \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
  -X k8s.io/client-go/pkg/version.gitMajor=1 \
  -X k8s.io/client-go/pkg/version.gitMinor=$k8s_minor"
log "k8s $K8S_VERSION (apiserver, controller-manager, scheduler, kubectl)"
(cd "$here/build/k8s" && go build -o "$stage/k8s" -ldflags "$k8s_ldflags" .)
for name in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  ln -s k8s "$stage/$name"
done

log "kubelet $K8S_VERSION and pause (the real node of \`kind/cluster up --serve --real-node\`)"
(cd "$here/build/k8s" && go build -o "$stage/kubelet" -ldflags "$k8s_ldflags" ./kubelet)
(cd "$here/build/k8s" && go build -o "$stage/pause" -ldflags "-s -w" ./pause)

log "etcd $ETCD_VERSION"
(cd "$here/build/etcd" && go build -o "$stage/etcd" -ldflags "-s -w" .)

log "kwok $KWOK_VERSION, helm $HELM_VERSION"
(cd "$here/build/tools" && go build -o "$stage/kwok" -ldflags "-s -w \
  -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} \
  -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}" sigs.k8s.io/kwok/cmd/kwok)
(cd "$here/build/tools" && go build -o "$stage/helm" -ldflags "-s -w \
  -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
  -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor" helm.sh/helm/v3/cmd/helm)

log "actionlint $ACTIONLINT_VERSION (lints .github/workflows)"
(cd "$here/build/tools" && go build -o "$stage/actionlint" -ldflags "-s -w \
  -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint)

# kwok >= v0.8.0 has no built-in stages when run standalone; ship the upstream fast
# stages from the module we built, so stage behaviour always matches the binary.
kwok_dir=$(cd "$here/build/tools" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$stage/kwok-stages"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  cp "$kwok_dir/kustomize/stage/$f" "$stage/kwok-stages/$(basename "$f")"
done

touch "$stage/.complete"
rm -rf "$bindir"
mv "$stage" "$bindir"
trap - EXIT
log "built into $bindir"
echo "$bindir"
