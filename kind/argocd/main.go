// The argocd CLI alone (not the multi-call binary with the server and controllers), built
// from the pinned github.com/argoproj/argo-cd/v3 module. Used for
// `argocd admin settings resource-overrides health`, which runs the Lua health checks of an
// argocd-cm locally, with Argo CD's own evaluator, without a server or a cluster.
package main

import (
	"os"

	cli "github.com/argoproj/argo-cd/v3/cmd/argocd/commands"
)

func main() {
	if err := cli.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
