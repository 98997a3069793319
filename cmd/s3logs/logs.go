package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/s3logs/s3logs/reader"
)

// timestampLayout is docker logs --timestamps' format (RFC3339NanoFixed).
const timestampLayout = "2006-01-02T15:04:05.000000000Z07:00"

// runLogs is `s3logs logs`.
func runLogs(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := newCommand("logs", "Usage: s3logs logs [OPTIONS] CONTAINER...\n\nPrint the logs of containers (names or id prefixes) from S3, as docker logs does: stdout records to stdout, stderr records to stderr. Several containers are merged by time, each line prefixed with its container's name.",
		"show records since a time: a duration before now (10m, 2h, 3d), an RFC 3339 time, a date, or Unix seconds",
		"show records until a time (same forms as --since)", stderr, getenv)
	fs, d := c.fs, &c.dest
	tail := fs.String("tail", "all", "number of lines to show from the end of each container's logs, or all")
	follow := fs.Bool("follow", false, "keep printing new records as their segments reach S3")
	fs.BoolVar(follow, "f", false, "shorthand for --follow")
	timestamps := fs.Bool("timestamps", false, "show timestamps, as docker logs --timestamps")
	fs.BoolVar(timestamps, "t", false, "shorthand for --timestamps")
	output := fs.String("output", "raw", "raw (the lines, as docker logs) or json (the stored records unchanged, one per line, for jq)")
	fs.StringVar(output, "o", "raw", "shorthand for --output")
	poll := fs.Duration("poll", reader.DefaultPoll, "how often --follow looks for new objects")
	containers, win, code := c.parse(args, stderr, time.Now())
	if code != nil {
		return *code
	}
	q := reader.Query{Selectors: containers, Window: win, Tail: -1, Follow: *follow, Poll: *poll, Stats: &reader.Stats{}}
	if len(containers) == 0 {
		return exitCode(stderr, usageError("logs needs at least one container name or id prefix"))
	}
	if *tail != "all" && *tail != "" {
		if _, err := fmt.Sscan(*tail, &q.Tail); err != nil || q.Tail < 0 {
			return exitCode(stderr, usageError(fmt.Sprintf("--tail %q: want a number of lines or all", *tail)))
		}
	}
	if *output != "raw" && *output != "json" {
		return exitCode(stderr, usageError(fmt.Sprintf("--output %q: want raw or json", *output)))
	}
	r, err := d.reader(ctx, getenv)
	if err != nil {
		return exitCode(stderr, err)
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	errOut := bufio.NewWriterSize(stderr, 64<<10)
	var mu sync.Mutex // guards out and errOut against the progress line
	defer func() {
		mu.Lock()
		out.Flush()
		errOut.Flush()
		mu.Unlock()
	}()
	stopProgress := progress(stderr, q.Stats, &mu, errOut)
	defer stopProgress()
	q.Waiting = func(err error) {
		mu.Lock()
		fmt.Fprintf(errOut, "s3logs: waiting: %v\n", err)
		errOut.Flush()
		mu.Unlock()
	}
	q.Caught = func() { // following: everything found so far goes out now
		mu.Lock()
		out.Flush()
		errOut.Flush()
		mu.Unlock()
	}
	pr := printer{raw: *output == "raw", timestamps: *timestamps, multi: len(containers) > 1}
	names := map[string]bool{}
	err = r.Logs(ctx, q, func(rec *reader.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if !pr.multi {
			names[rec.Container.Label()] = true
			pr.multi = len(names) > 1 // one name selecting several containers stays unprefixed
		}
		pr.print(out, errOut, rec)
		return nil
	})
	return exitCode(stderr, err)
}

// printer writes records as docker logs (raw) or as stored (json).
type printer struct {
	raw, timestamps, multi bool
	width                  int
	buf                    []byte
}

func (p *printer) print(out, errOut *bufio.Writer, rec *reader.Record) {
	b := p.buf[:0]
	if p.multi {
		name := rec.Container.Label()
		p.width = max(p.width, len(name))
		b = append(b, name...)
		b = append(b, strings.Repeat(" ", p.width-len(name))...)
		b = append(b, "  | "...)
	}
	if !p.raw {
		b = append(b, rec.Raw...)
		b = append(b, '\n')
		out.Write(b)
		p.buf = b
		return
	}
	if p.timestamps {
		b = rec.Time.AppendFormat(b, timestampLayout)
		b = append(b, ' ')
	}
	b = append(b, rec.Log...)
	if rec.Source == "stderr" {
		errOut.Write(b)
	} else {
		out.Write(b)
	}
	p.buf = b
}

// progress shows objects and bytes done on stderr, when it is a terminal,
// for reads longer than a second. The returned function stops it and
// clears the line.
func progress(stderr io.Writer, st *reader.Stats, mu *sync.Mutex, errOut *bufio.Writer) func() {
	if !isTerminal(stderr) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ends when the returned function closes done
		defer wg.Done()
		start := time.Now()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					mu.Lock()
					errOut.Flush()
					fmt.Fprint(os.Stderr, "\r\033[K")
					mu.Unlock()
				}
				return
			case <-t.C:
			}
			el := time.Since(start)
			if el < time.Second {
				continue
			}
			mb := float64(st.Bytes.Load()) / 1e6
			mu.Lock()
			errOut.Flush()
			fmt.Fprintf(stderr, "\r\033[K%d/%d objects, %.1f MB, %.1f MB/s", st.ObjectsDone.Load(), st.ObjectsTotal.Load(), mb, mb/el.Seconds())
			mu.Unlock()
			shown = true
		}
	}()
	return func() { close(done); wg.Wait() }
}
