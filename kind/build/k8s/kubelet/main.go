// Command kubelet is upstream's kubelet from k8s.io/kubernetes at the version build/k8s pins,
// for `kind/cluster up --serve --real-node` (kind/README.md, "A real node"). It is a binary of
// its own rather than a name of the multi-call k8s binary: only clusters with a real node
// start it, and the control plane's binary stays as it was. The body is upstream
// cmd/kubelet/kubelet.go at the pinned tag.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	command := app.NewKubeletCommand(context.Background())
	code := cli.Run(command)
	os.Exit(code)
}
