// Command coredns is CoreDNS built from the pinned github.com/coredns/coredns module with only the
// plugins the local cluster's Corefile uses (see ../up.sh). The stock binary links every plugin,
// including the cloud DNS providers' SDKs; leaving them out makes the build several times faster.
// The plugins run in the order of the stock dnsserver.Directives list, whatever the order below.
package main

import (
	_ "github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() { coremain.Run() }
