// Command etcd is upstream etcd's server main. server/go.mod carries replace directives,
// so `go install go.etcd.io/etcd/server/v3@vX` is refused (etcd-io/etcd#18501); as the main
// module, this wrapper ignores them and takes sibling modules from the proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
