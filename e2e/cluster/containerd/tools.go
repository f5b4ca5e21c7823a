//go:build tools

// Pins containerd 2.x for the local cluster's node. The commands are built straight from the module
// (`go build github.com/containerd/containerd/v2/cmd/...` in this directory, see ../build.sh); this file
// only keeps the requirement in go.mod. containerd is kept apart from the Kubernetes module so their
// dependency graphs cannot pull each other to different versions.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
