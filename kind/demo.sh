#!/usr/bin/env bash
# `make demo`: start (or reuse) the local control plane named "demo", show its GPU nodes, then
# run the operator against it for a moment: one ModelDeployment served, one refused.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
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

echo; echo "== the operator: CRDs, then gptoss-operator run (for this demo only)"
kubectl apply --server-side --force-conflicts -f "$repo/crds" >/dev/null
kubectl wait --for=condition=Established crd/modeldeployments.gptoss.dev >/dev/null
log=$(dirname "$kubeconfig")/operator-demo.log
"$repo/.venv/bin/gptoss-operator" run --metrics-port 0 --liveness-port 0 >"$log" 2>&1 &
operator=$!
trap 'kill $operator 2>/dev/null || true' EXIT
kubectl create namespace llm --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n llm -f "$repo/examples/modeldeployment-120b-h100.yaml" -f "$repo/examples/modeldeployment-refused-t4.yaml"
kubectl wait -n llm --for=condition=Ready md/oss-120b --timeout=60s >/dev/null
kubectl wait -n llm --for=condition=Planned=False md/oss-120b-on-t4 --timeout=60s >/dev/null
echo
kubectl get md -n llm
echo
kubectl get deploy,svc,pods -n llm -o wide
echo
echo "oss-120b-on-t4: $(kubectl get md -n llm oss-120b-on-t4 -o jsonpath='{.status.conditions[?(@.type=="Planned")].message}')"
cat <<TXT

The demo cluster keeps running (the operator stopped; its log: $log). Use it with:
  export KUBECONFIG=$kubeconfig PATH=$bindir:\$PATH
Stop it with:
  kind/cluster down --name demo
TXT
