//go:build tools

// Pins runc, the OCI runtime containerd's runc shim starts every container with. It is built straight
// from the module (`go build github.com/opencontainers/runc` in this directory, see ../build.sh), with
// cgo and libseccomp for the seccomp filters of pods that ask for `RuntimeDefault`; this file only keeps
// the requirement in go.mod.
package tools

import _ "github.com/opencontainers/runc"
