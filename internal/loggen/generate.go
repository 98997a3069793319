package loggen

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Generate writes the lines of s in order to stdout or stderr, pacing them
// to s.Rate lines per second when it is set, and otherwise gathering them
// into write calls of up to s.Buffer bytes when that is set. It stops
// early, between write calls, when ctx is done or s.Duration has passed
// since the call (ctx.Err() is not an error here: stopping early is the
// point); lines it had gathered are written first. It returns the number
// of lines written, and the first write error. Generate does not implement
// s.Sleep, s.Burst, s.CountFile or s.Report (Main does). It must not be
// called concurrently with other writers of the same streams.
func Generate(ctx context.Context, s Spec, stdout, stderr io.Writer) (int, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	return generate(ctx, s, 0, stdout, stderr)
}

// generate is Generate for lines [from, s.Count()) of a valid s; it returns
// the index after the last line written.
func generate(ctx context.Context, s Spec, from int, stdout, stderr io.Writer) (int, error) {
	start := time.Now()
	var deadline <-chan time.Time
	if s.Duration > 0 {
		t := time.NewTimer(s.Duration)
		defer t.Stop()
		deadline = t.C
	}
	out := func(st Stream) io.Writer {
		if st == Stderr {
			return stderr
		}
		return stdout
	}
	// pending holds whole lines [written, i) of stream pendingStream, not
	// yet written; only with a Buffer at full speed.
	var (
		pending       []byte
		pendingStream Stream
		written       = from
		line          []byte
		pace          *time.Timer
	)
	buffered := s.Buffer > 0 && s.Rate == 0
	if buffered {
		pending = make([]byte, 0, s.Buffer)
	}
	flush := func(upTo int) error {
		if len(pending) == 0 {
			return nil
		}
		if _, err := out(pendingStream).Write(pending); err != nil {
			return fmt.Errorf("loggen: write lines %d to %d to %s: %w", written, upTo-1, pendingStream, err)
		}
		pending, written = pending[:0], upTo
		return nil
	}
	for i := from; i < s.Count(); i++ {
		if s.Rate > 0 && i > from {
			due := start.Add(time.Duration(float64(i-from) / s.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				if pace == nil {
					pace = time.NewTimer(d)
					defer pace.Stop()
				} else {
					pace.Reset(d)
				}
				select {
				case <-ctx.Done():
					return written, nil
				case <-deadline:
					return written, nil
				case <-pace.C:
				}
			}
		}
		stop := false
		select {
		case <-ctx.Done():
			stop = true
		case <-deadline:
			stop = true
		default:
		}
		if stop {
			err := flush(i)
			return written, err
		}
		var st Stream
		st, line = s.Append(line[:0], i)
		if !buffered {
			if _, err := out(st).Write(line); err != nil {
				return written, fmt.Errorf("loggen: write line %d to %s: %w", i, st, err)
			}
			written = i + 1
			continue
		}
		if len(pending) > 0 && (st != pendingStream || len(pending)+len(line) > s.Buffer) {
			if err := flush(i); err != nil {
				return written, err
			}
		}
		pending, pendingStream = append(pending, line...), st
	}
	err := flush(s.Count())
	return written, err
}
