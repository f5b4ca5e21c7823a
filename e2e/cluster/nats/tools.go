//go:build tools

// Pins nats-server. It is built straight from its module (`go build github.com/nats-io/nats-server/v2`
// in this directory, see ../build.sh); this file only keeps the requirement in go.mod.
package tools

import (
	_ "github.com/nats-io/nats-server/v2"
)
