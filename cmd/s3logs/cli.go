package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/s3logs/s3logs/keys"
	"github.com/s3logs/s3logs/reader"
	"github.com/s3logs/s3logs/s3client"
)

// Exit codes of the CLI, for scripts.
const (
	exitOK       = 0
	exitError    = 1 // any other failure
	exitUsage    = 2 // bad flags or arguments
	exitNotFound = 3 // no such container in the window
	exitAccess   = 4 // bucket missing, access denied or bad credentials
)

const usage = `Usage: s3logs COMMAND [OPTIONS]

Commands:
  logs [OPTIONS] CONTAINER...   print a container's logs from S3, as docker logs does
  ls   [OPTIONS] [CONTAINER...] list containers and their segments in S3
  plugin                        run as the Docker logging plugin (the plugin's entrypoint)

Run 's3logs COMMAND -h' for a command's options.
Exit codes: 0 ok, 1 error, 2 usage, 3 no such container in the window, 4 bucket missing or access denied.
`

// cli runs a CLI command and returns its exit code.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "logs":
		return runLogs(ctx, args[1:], stdout, stderr, getenv)
	case "ls":
		return runLs(ctx, args[1:], stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "s3logs: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// destFlags are the destination flags, named like the log-opts, with
// S3LOGS_* environment defaults.
type destFlags struct {
	bucket, endpoint, region, prefix, pathStyle string
	lookback                                    time.Duration
	concurrency                                 int
}

func (d *destFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	env := func(name string) string {
		return getenv("S3LOGS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	fs.StringVar(&d.bucket, "bucket", env("bucket"), "S3 bucket the plugin uploads to (env S3LOGS_BUCKET); required")
	fs.StringVar(&d.endpoint, "endpoint", env("endpoint"), "S3-compatible endpoint URL (env S3LOGS_ENDPOINT; AWS_ENDPOINT_URL also works)")
	fs.StringVar(&d.region, "region", env("region"), "S3 region (env S3LOGS_REGION; default: the AWS SDK's chain, else us-east-1)")
	fs.StringVar(&d.prefix, "prefix", env("prefix"), "the key prefix template the containers logged with (env S3LOGS_PREFIX; default "+keys.DefaultPrefix+")")
	fs.StringVar(&d.pathStyle, "force-path-style", env("force-path-style"), "true|false: path-style addressing (env S3LOGS_FORCE_PATH_STYLE; default true when an endpoint is set)")
	fs.DurationVar(&d.lookback, "lookback", reader.DefaultLookback, "how long before --since a segment may have started: your largest segment-age")
	fs.IntVar(&d.concurrency, "concurrency", reader.DefaultConcurrency, "objects fetched at once")
}

// command is the flag set of a subcommand: its usage text, the
// destination flags and the time window.
type command struct {
	fs           *flag.FlagSet
	dest         destFlags
	since, until *string
}

// newCommand registers the flags every subcommand has; sinceHelp and
// untilHelp describe --since and --until for it.
func newCommand(name, usage, sinceHelp, untilHelp string, stderr io.Writer, getenv func(string) string) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {
		fmt.Fprintln(stderr, usage+"\n\nOptions:")
		c.fs.PrintDefaults()
	}
	c.dest.register(c.fs, getenv)
	c.since = c.fs.String("since", "", sinceHelp)
	c.until = c.fs.String("until", "", untilHelp)
	return c
}

// parse parses args (see parseFlags) and the window, and returns the
// positional arguments; a non-nil code means the command ends with it
// (the error was printed).
func (c *command) parse(args []string, stderr io.Writer, now time.Time) ([]string, reader.Window, *int) {
	code := func(n int) *int { return &n }
	var w reader.Window
	pos, err := parseFlags(c.fs, args)
	if err != nil {
		if err == flag.ErrHelp {
			return nil, w, code(exitOK)
		}
		return nil, w, code(exitUsage)
	}
	if w.Since, err = parseTime(*c.since, now); err != nil {
		return nil, w, code(exitCode(stderr, err))
	}
	if w.Until, err = parseTime(*c.until, now); err != nil {
		return nil, w, code(exitCode(stderr, err))
	}
	return pos, w, nil
}

// reader builds the Reader the flags describe.
func (d *destFlags) reader(ctx context.Context, getenv func(string) string) (*reader.Reader, error) {
	if d.bucket == "" {
		return nil, usageError("--bucket (or S3LOGS_BUCKET) is required: the bucket log-opt the containers used")
	}
	p, err := keys.ParsePrefix(d.prefix)
	if err != nil {
		return nil, usageError(fmt.Sprintf("--prefix: %v", err))
	}
	pathStyle := d.endpoint != "" || getenv("AWS_ENDPOINT_URL") != "" || getenv("AWS_ENDPOINT_URL_S3") != ""
	if d.pathStyle != "" {
		pathStyle, err = strconv.ParseBool(d.pathStyle)
		if err != nil {
			return nil, usageError(fmt.Sprintf("--force-path-style %q: want true or false", d.pathStyle))
		}
	}
	client, err := s3client.NewFactory(s3client.Options{}).Client(ctx, s3client.Target{Region: d.region, Endpoint: d.endpoint, PathStyle: pathStyle})
	if err != nil {
		return nil, err
	}
	r, err := reader.New(reader.Config{Store: client, Bucket: d.bucket, Prefix: p, Lookback: d.lookback, Concurrency: d.concurrency})
	if errors.Is(err, keys.ErrNotWalkable) {
		return nil, usageError(err.Error())
	}
	return r, err
}

// usageError is an error that exits with exitUsage.
type usageError string

func (e usageError) Error() string { return string(e) }

// exitCode prints err and maps it to an exit code.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "s3logs:", err)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, reader.ErrNotFound):
		return exitNotFound
	case errors.Is(err, reader.ErrNoBucket), errors.Is(err, reader.ErrAccess):
		return exitAccess
	case errors.Is(err, context.Canceled):
		return exitOK
	}
	return exitError
}

// parseFlags parses args with flags and positional arguments in any order,
// as docker's CLI allows.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseTime reads a --since/--until value: a duration before now (10m,
// 2h, 3d, 1h30m), an RFC 3339 time, a date (2026-11-30, local time), a
// date and time without zone (local time), or Unix seconds.
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := parseAgo(s); ok {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if sec, frac, ok := strings.Cut(s, "."); ok || sec != "" {
		if n, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if ok {
				f, err := strconv.ParseFloat("0."+frac, 64)
				if err != nil {
					return time.Time{}, badTime(s)
				}
				ns = int64(f * 1e9)
			}
			return time.Unix(n, ns), nil
		}
	}
	return time.Time{}, badTime(s)
}

func badTime(s string) error {
	return usageError(fmt.Sprintf("time %q: want a duration before now (10m, 2h, 3d), an RFC 3339 time (2026-11-30T10:00:00Z), a date (2026-11-30) or Unix seconds", s))
}

// parseAgo reads a Go duration, with "d" for days.
func parseAgo(s string) (time.Duration, bool) {
	var total time.Duration
	rest := s
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n < 0 {
			return 0, false
		}
		total = time.Duration(n) * 24 * time.Hour
		rest = rest[i+1:]
		if rest == "" {
			return total, true
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil || d < 0 {
		return 0, false
	}
	return total + d, true
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && f.Name() != os.DevNull
}
