package loggen

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Generate performs the writes of s in order, each with one Write call on
// stdout or stderr, pacing them to s.Rate lines per second when it is set.
// It stops early, between writes, when ctx is done or s.Duration has passed
// since the call (ctx.Err() is not an error here: stopping early is the
// point). It returns the number of complete writes, and the first write
// error. Generate does not implement s.Sleep or s.CountFile (cmd/loggen
// does). It must not be called concurrently with other writers of the same
// streams.
func Generate(ctx context.Context, s Spec, stdout, stderr io.Writer) (int, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	start := time.Now()
	var deadline <-chan time.Time
	if s.Duration > 0 {
		t := time.NewTimer(s.Duration)
		defer t.Stop()
		deadline = t.C
	}
	var pace *time.Timer
	for i := range s.Count() {
		if s.Rate > 0 && i > 0 {
			due := start.Add(time.Duration(float64(i) / s.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				if pace == nil {
					pace = time.NewTimer(d)
					defer pace.Stop()
				} else {
					pace.Reset(d)
				}
				select {
				case <-ctx.Done():
					return i, nil
				case <-deadline:
					return i, nil
				case <-pace.C:
				}
			}
		}
		select {
		case <-ctx.Done():
			return i, nil
		case <-deadline:
			return i, nil
		default:
		}
		w := s.Write(i)
		out := stdout
		if w.Stream == Stderr {
			out = stderr
		}
		if _, err := out.Write(w.Data); err != nil {
			return i, fmt.Errorf("loggen: write %d to %s: %w", i, w.Stream, err)
		}
	}
	return s.Count(), nil
}
