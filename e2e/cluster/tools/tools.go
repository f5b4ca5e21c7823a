//go:build tools

// Pins the node's helper commands: crictl (CRI debugging and tear-down) and crane (pushes images to
// the local registry). They are built straight from their modules (`go build sigs.k8s.io/cri-tools/cmd/crictl`
// in this directory, see ../build.sh); this file only keeps the requirements in go.mod.
package tools

import (
	_ "github.com/google/go-containerregistry/cmd/crane"
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
