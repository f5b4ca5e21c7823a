// Command registry is the distribution/distribution OCI registry with only the filesystem storage
// driver: the local cluster's registry keeps its blobs on disk ($ZEROSCALE_CACHE/registry). The stock
// command also links the S3, GCS and Azure drivers and their SDKs, which the local cluster never uses.
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
