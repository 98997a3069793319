// Command gen is the log generator cmd/loggen (loggen.Main) under the path
// the Makefile's bench-image target builds, the entrypoint of the
// benchmark's workload image. It goes when that target builds cmd/loggen.
package main

import (
	"os"

	"github.com/s3logs/s3logs/internal/loggen"
)

func main() {
	os.Exit(loggen.Main(os.Args[1:], os.Stdout, os.Stderr))
}
