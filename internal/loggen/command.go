package loggen

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
)

// Main is the command cmd/loggen: it parses args (see ParseFlags; -h lists
// the flags), writes the lines of the Spec to stdout and stderr with
// Generate, and returns the exit status: 0, 1 on a failed write or file, 2
// on bad arguments. Around Generate it implements what a container needs:
// CountFile (the run number survives restarts), Report (the number of lines
// written, rewritten whenever writing stops), Sleep (wait for SIGTERM or
// SIGINT after the last line) and Burst (each SIGUSR1 writes Burst more
// lines at full speed). SIGTERM or SIGINT stops it between two write calls
// with status 0, so `docker stop` leaves whole lines.
func Main(args []string, stdout, stderr io.Writer) int {
	spec, err := ParseFlags(args)
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
	usr1 := make(chan os.Signal, 1)
	if spec.Burst > 0 {
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
	}
	n, genErr := generate(ctx, spec, 0, stdout, stderr)
	for {
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
		if !spec.Sleep {
			return 0
		}
		select {
		case <-ctx.Done():
			return 0
		case <-usr1:
			more := spec
			more.Lines, more.Rate, more.Duration = n+spec.Burst, 0, 0
			n, genErr = generate(ctx, more, n, stdout, stderr)
		}
	}
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
