// Command gen writes the benchmark workloads of bench/workload to stdout; it
// is the entrypoint of the harness's container image (s3logs-benchgen).
//
//	gen -kind short -lines 2000000        # like `seq 1 2000000`
//	gen -kind json -lines 200000          # ~1 KiB JSON lines
//	gen -lines 5 -rate 1 -sleep           # one line a second, then idle
//
// At full speed output is buffered (-buf bytes per write(2), 32 KiB by
// default, as a C program's stdio would do on a pipe); with -rate each line
// is written on its own. With -sleep, gen waits after its lines until
// SIGTERM or SIGINT (exit 0); meanwhile each SIGUSR1 writes another -burst
// lines at full speed, which is how the harness makes idle containers busy.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s3logs/s3logs/bench/workload"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	kind  workload.Kind
	lines int
	rate  float64
	buf   int
	sleep bool
	burst int
}

func parse(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", string(workload.Short), "line kind: short (seq-like) or json (~1 KiB)")
	var c config
	fs.IntVar(&c.lines, "lines", 1000, "number of lines")
	fs.Float64Var(&c.rate, "rate", 0, "lines per second; 0 writes at full speed")
	fs.IntVar(&c.buf, "buf", 32<<10, "output buffer in bytes at full speed")
	fs.BoolVar(&c.sleep, "sleep", false, "after the lines, wait for SIGTERM; SIGUSR1 writes -burst more lines")
	fs.IntVar(&c.burst, "burst", 100000, "lines written at full speed per SIGUSR1 (with -sleep)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	k, ok := workload.ParseKind(*kind)
	if !ok {
		return c, fmt.Errorf("unknown -kind %q", *kind)
	}
	c.kind = k
	if c.lines < 0 || c.rate < 0 || c.buf < 1 || c.burst < 0 || fs.NArg() > 0 {
		return c, fmt.Errorf("bad arguments")
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	if c.sleep {
		signal.Notify(usr1, syscall.SIGUSR1)
	}
	var err2 error
	if c.rate > 0 {
		err2 = paced(ctx, stdout, c)
	} else {
		err2 = burst(stdout, c.kind, 0, c.lines, c.buf)
	}
	if err2 != nil {
		fmt.Fprintln(stderr, "gen:", err2)
		return 1
	}
	next := c.lines
	for c.sleep {
		select {
		case <-ctx.Done():
			return 0
		case <-usr1:
			if err := burst(stdout, c.kind, next, c.burst, c.buf); err != nil {
				fmt.Fprintln(stderr, "gen:", err)
				return 1
			}
			next += c.burst
		}
	}
	return 0
}

// burst writes lines [from, from+n) through a buffer of buf bytes.
func burst(w io.Writer, kind workload.Kind, from, n, buf int) error {
	bw := bufio.NewWriterSize(w, buf)
	var line []byte
	for i := from; i < from+n; i++ {
		line = workload.Append(line[:0], kind, i)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// paced writes c.lines lines at c.rate per second, one write each, until
// ctx ends.
func paced(ctx context.Context, w io.Writer, c config) error {
	start := time.Now()
	var line []byte
	for i := 0; i < c.lines; i++ {
		due := start.Add(time.Duration(float64(i) / c.rate * float64(time.Second)))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(due)):
		}
		line = workload.Append(line[:0], c.kind, i)
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}
