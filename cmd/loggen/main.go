// Command loggen writes deterministic log lines for the s3logs end-to-end
// tests, the demo and the benchmark harness.
//
// It is the entrypoint of the test image (FROM scratch). The lines it
// writes are defined by package internal/loggen, which the tests use to
// compute the expected output; the command itself is loggen.Main. Run with
// -h for the flags. SIGTERM or SIGINT stops it between two write calls
// with exit status 0, so `docker stop` leaves whole lines.
package main

import (
	"os"

	"github.com/s3logs/s3logs/internal/loggen"
)

func main() {
	os.Exit(loggen.Main(os.Args[1:], os.Stdout, os.Stderr))
}
