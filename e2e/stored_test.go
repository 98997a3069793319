package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// What reached S3 from a container, line by line: every object decoded,
// the records parsed, and the stored lines tallied against the generator's.

// eachObject downloads every object of c in key order and calls fn with
// its decompressed records, one object at a time.
func (c *container) eachObject(t testing.TB, fn func(o object, records []byte)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	objs, err := c.s.list(ctx, c.bucket, c.prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		raw, _, err := c.s.getObject(ctx, c.bucket, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		body, err := c.s.zdec.DecodeAll(raw, nil)
		if err != nil {
			t.Fatalf("zstd decode %s/%s: %v", c.bucket, o.Key, err)
		}
		fn(o, body)
	}
}

// fetchAll downloads every object of c in key order and returns the
// concatenated log of each stream and the record count. Records are parsed
// with a fast path for the plain lines the generator writes in ModeLines
// and ModeBulk and with encoding/json otherwise; either way the json-file
// format is checked.
func (c *container) fetchAll(t testing.TB) (objs []object, out, errOut []byte, records int) {
	t.Helper()
	c.eachObject(t, func(o object, body []byte) {
		objs = append(objs, o)
		for line := range bytes.Lines(body) {
			stream, log, err := parseRecord(line)
			if err != nil {
				t.Fatalf("object %s/%s record %d: %v", c.bucket, o.Key, records, err)
			}
			if stream == "stderr" {
				errOut = append(errOut, log...)
			} else {
				out = append(out, log...)
			}
			records++
		}
	})
	return objs, out, errOut, records
}

var (
	recHead   = []byte(`{"log":"`)
	recStdout = []byte(`\n","stream":"stdout","time":"`)
	recTail   = []byte("Z\"}\n")
)

// parseRecord returns the stream and log of one json-file line.
func parseRecord(line []byte) (stream string, log []byte, err error) {
	// Fast path: {"log":"<text without escapes>\n","stream":"stdout","time":"...Z"}
	if rest, ok := bytes.CutPrefix(line, recHead); ok && bytes.HasSuffix(line, recTail) {
		if i := bytes.Index(rest, recStdout); i >= 0 && bytes.IndexByte(rest[:i], '\\') < 0 && bytes.IndexByte(rest[:i], '"') < 0 {
			ts := rest[i+len(recStdout) : len(rest)-3]
			if len(ts) >= 20 && bytes.IndexByte(ts, '"') < 0 {
				return "stdout", append(rest[:i:i], '\n'), nil
			}
		}
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return "", nil, fmt.Errorf("%q: %w", trunc(line), err)
	}
	if r.Stream != "stdout" && r.Stream != "stderr" {
		return "", nil, fmt.Errorf("%q: stream %q", trunc(line), r.Stream)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil || !strings.HasSuffix(r.Time, "Z") {
		return "", nil, fmt.Errorf("%q: time %q is not RFC 3339 UTC", trunc(line), r.Time)
	}
	return r.Stream, []byte(r.Log), nil
}

// lineTally compares stored lines with the generator's writes 0..n-1.
type lineTally struct {
	written, stored, lost, dups, foreign int
	outOfOrder                           int // lines whose number is below an earlier one
	missing                              []int
}

func (l lineTally) String() string {
	m := l.missing
	if len(m) > 20 {
		m = m[:20]
	}
	return fmt.Sprintf("written=%d stored=%d lost=%d duplicates=%d foreign=%d out_of_order=%d first_missing=%v",
		l.written, l.stored, l.lost, l.dups, l.foreign, l.outOfOrder, m)
}

// tally matches the stored lines against want, the generator's lines
// 0..n-1 of one stream, line by line: every stored line must equal one of
// them exactly; it counts lost, duplicated and foreign lines.
func tally(stored []byte, want [][]byte) lineTally {
	index := make(map[string]int, len(want))
	for i, w := range want {
		index[string(w)] = i
	}
	seen := make([]int, len(want))
	l := lineTally{written: len(want)}
	last := -1
	for line := range bytes.Lines(stored) {
		l.stored++
		i, ok := index[string(line)]
		if !ok {
			l.foreign++
			continue
		}
		if i < last {
			l.outOfOrder++
		}
		last = i
		seen[i]++
	}
	for i, n := range seen {
		switch {
		case n == 0:
			l.lost++
			l.missing = append(l.missing, i)
		case n > 1:
			l.dups += n - 1
		}
	}
	return l
}

// splitLines splits a generator's output into its lines, newline included.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for line := range bytes.Lines(b) {
		out = append(out, line)
	}
	return out
}
