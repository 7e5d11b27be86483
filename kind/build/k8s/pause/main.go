// Command pause is the pod sandbox's process for the real node (kind/README.md, "A real
// node"): it holds the pod's namespaces and does nothing else, like upstream's
// registry.k8s.io/pause (kubernetes build/pause/linux/pause.c), which cannot be pulled here.
// As there: exit 0 on SIGINT/SIGTERM, reap children (it may be PID 1 of a shared PID
// namespace), otherwise sleep.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
