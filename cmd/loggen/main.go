// Command loggen writes deterministic log lines for the s3logs end-to-end tests.
//
// It is the entrypoint of the test image (FROM scratch). The bytes it writes
// are defined by package internal/loggen, which the tests use to compute the
// expected output. Run with -h for the flags. SIGTERM or SIGINT stops it
// between two lines with exit status 0, so `docker stop` leaves whole lines.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/s3logs/s3logs/internal/loggen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	spec, err := loggen.ParseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, err)
		return 2
	}
	if spec.CountFile != "" {
		n, err := bumpCounter(spec.CountFile)
		if err != nil {
			fmt.Fprintln(stderr, "loggen:", err)
			return 1
		}
		spec.Run = n
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n, genErr := loggen.Generate(ctx, spec, stdout, stderr)
	if spec.Report != "" {
		if err := os.WriteFile(spec.Report, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
			fmt.Fprintln(stderr, "loggen: report:", err)
			return 1
		}
	}
	if genErr != nil {
		fmt.Fprintln(stderr, genErr)
		return 1
	}
	if spec.Sleep {
		<-ctx.Done()
	}
	return 0
}

// bumpCounter reads the run counter in path (missing means 0), writes back
// the incremented value and returns it.
func bumpCounter(path string) (int, error) {
	n := 0
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		n, err = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("counter file %s: %w", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return 0, err
	}
	n++
	if err := os.WriteFile(path, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
		return 0, err
	}
	return n, nil
}
