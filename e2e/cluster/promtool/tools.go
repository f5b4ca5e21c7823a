//go:build tools

// Pins promtool. It is built straight from its module (`go build
// github.com/prometheus/prometheus/cmd/promtool` in this directory, see ../build.sh); this file only
// keeps the requirement in go.mod.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
