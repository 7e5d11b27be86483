#!/usr/bin/env bash
# `make demo`: start (or reuse) the local control plane named "demo" and show its GPU nodes.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster="$here/cluster"
if kubeconfig=$("$cluster" kubeconfig --name demo 2>/dev/null); then
  echo "reusing the running demo cluster"
else
  kubeconfig=$("$cluster" up --name demo | tail -n 1 | sed 's/^KUBECONFIG=//')
fi
bindir=$("$cluster" bindir)
export KUBECONFIG=$kubeconfig PATH="$bindir:$PATH"
kubectl version
echo
kubectl get nodes -L nvidia.com/gpu.product -L nvidia.com/gpu.count -L amd.com/gpu.product-name
echo
kubectl get nodes -o custom-columns='NODE:.metadata.name,NVIDIA:.status.allocatable.nvidia\.com/gpu,AMD:.status.allocatable.amd\.com/gpu'
cat <<TXT

The demo cluster keeps running. Use it with:
  export KUBECONFIG=$kubeconfig PATH=$bindir:\$PATH
Stop it with:
  kind/cluster down --name demo
TXT
