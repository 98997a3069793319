package fifo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
)

// baseTime is the time of the first entry of every recorded stream; entries
// follow a millisecond apart. testNow is the decoders' clock in these tests.
var baseTime = time.Date(2025, 11, 27, 15, 14, 5, 123456789, time.UTC)

func testNow() time.Time { return baseTime.Add(time.Hour) }

// recording is a FIFO stream as Docker writes it, with where each frame
// starts: frame i is data[offs[i]:offs[i+1]] and offs[len(entries)] is
// len(data).
type recording struct {
	data    []byte
	offs    []int
	entries []*logentry.LogEntry
}

func (r *recording) add(e *logentry.LogEntry) {
	p, err := e.Marshal()
	if err != nil {
		panic(err)
	}
	if len(r.offs) == 0 {
		r.offs = append(r.offs, 0)
	}
	r.data = append(binary.BigEndian.AppendUint32(r.data, uint32(len(p))), p...)
	r.offs = append(r.offs, len(r.data))
	r.entries = append(r.entries, e)
}

// boundary returns the index of the first frame that starts at or after
// offset c (len(entries) when none does).
func (r *recording) boundary(c int) int {
	return sort.SearchInts(r.offs, c)
}

// A shape is one kind of recorded stream: build records n lines with the
// given content ("text" or "binary").
type shape struct {
	name  string
	build func(n int, binary bool) *recording
}

var shapes = []shape{
	{"short", shortLines},
	{"json1k", jsonLines},
	{"partial16k", partialLines},
	{"line1m", hugeLines},
}

func entryAt(i int, src int, line []byte) *logentry.LogEntry {
	s := "stdout"
	if src%3 == 2 {
		s = "stderr"
	}
	return &logentry.LogEntry{Source: s, TimeNano: baseTime.UnixNano() + int64(i)*int64(time.Millisecond), Line: line}
}

// content returns n bytes of log text (printable JSON-ish characters) or, if
// bin, arbitrary bytes, zeros included.
func content(rng *rand.Rand, n int, bin bool) []byte {
	const text = `abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.:"{}[]/_-=`
	b := make([]byte, n)
	for i := range b {
		if bin {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = text[rng.IntN(len(text))]
		}
	}
	return b
}

// shortLines: lines like "12345" (or 5 arbitrary bytes).
func shortLines(n int, bin bool) *recording {
	rng := rand.New(rand.NewPCG(1, 2))
	r := &recording{}
	for i := range n {
		line := []byte(strconv.Itoa(10000 + i%90000))
		if bin {
			line = content(rng, 5, true)
		}
		r.add(entryAt(i, i, line))
	}
	return r
}

// jsonLines: lines of about 1 KiB of JSON-ish text (or arbitrary bytes).
func jsonLines(n int, bin bool) *recording {
	rng := rand.New(rand.NewPCG(3, 4))
	r := &recording{}
	for i := range n {
		var line []byte
		if bin {
			line = content(rng, 900+rng.IntN(250), true)
		} else {
			line = fmt.Appendf(nil, `{"time":"%s","level":"info","msg":"request served","seq":%d,"pad":"`,
				baseTime.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i)
			line = append(line, content(rng, 850+rng.IntN(250), false)...)
			line = append(line, `"}`...)
		}
		r.add(entryAt(i, i, line))
	}
	return r
}

// partialLines: lines of 100 KiB that the daemon splits into 16 KiB pieces
// (Partial, with metadata: the same id, ordinals from 1, Last on the final
// piece, the first piece's time on every piece).
func partialLines(n int, bin bool) *recording {
	rng := rand.New(rand.NewPCG(5, 6))
	r := &recording{}
	const lineLen, piece = 100 << 10, 16 << 10
	for i := range n {
		line := content(rng, lineLen, bin)
		id := fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
		for ord, off := 1, 0; off < len(line); ord, off = ord+1, off+piece {
			e := entryAt(i, i, line[off:min(off+piece, len(line))])
			e.Partial = true
			e.PartialLogMetadata = &logentry.PartialLogEntryMetadata{Id: id, Ordinal: int32(ord), Last: off+piece >= len(line)}
			r.add(e)
		}
	}
	return r
}

// hugeLines: lines of about 1,000,000 bytes, one frame each, close to
// MaxFrameSize.
func hugeLines(n int, bin bool) *recording {
	rng := rand.New(rand.NewPCG(7, 8))
	r := &recording{}
	for i := range n {
		r.add(entryAt(i, i, content(rng, 1_000_000-rng.IntN(1000), bin)))
	}
	return r
}

// fuzzRecordings are the streams FuzzResync cuts, built once: each shape in
// text and binary content.
var fuzzRecordings = sync.OnceValue(func() []*recording {
	sizes := map[string]int{"short": 2000, "json1k": 200, "partial16k": 3, "line1m": 3}
	var out []*recording
	for _, s := range shapes {
		out = append(out, s.build(sizes[s.name], false), s.build(sizes[s.name], true))
	}
	return out
})

// chunkReader returns at most n bytes per Read (any number when n <= 0),
// like a pipe that the writer fills piece by piece.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.n > 0 && len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// checkCut decodes src, which must read rec.data[cut:offs[last]], with d
// reset onto it in resync mode, and checks that d skips exactly to the first
// frame boundary at or after cut, then returns the recorded frames up to
// frame last, with their offsets, and io.EOF. It returns "" or a description
// of the first difference and whether that difference is a false frame (a
// frame that is not the recorded one at that offset).
func checkCut(d *Decoder, src io.Reader, rec *recording, cut, last int, e *logentry.LogEntry) (string, bool) {
	d.Reset(src)
	d.Resync()
	j := rec.boundary(cut)
	skip := int64(rec.offs[j] - cut)
	if skip > 0 {
		err := d.Decode(e)
		var se *SkipError
		switch {
		case err == nil:
			return fmt.Sprintf("false frame ending at offset %d (boundary at %d): %.60q", cut+int(d.Offset()), rec.offs[j], e.Line), true
		case !errors.As(err, &se):
			return fmt.Sprintf("Decode = %v, want a SkipError of %d bytes", err, skip), false
		case se.Bytes != skip || !errors.Is(err, ErrResyncRequested):
			return fmt.Sprintf("Decode = %v, want a SkipError of %d bytes", err, skip), false
		case d.Offset() != skip:
			return fmt.Sprintf("Offset after skip = %d, want %d", d.Offset(), skip), false
		}
	}
	for i := j; i < last; i++ {
		err := d.Decode(e)
		if err != nil {
			return fmt.Sprintf("frame %d: Decode = %v", i, err), false
		}
		if !equalEntry(e, rec.entries[i]) {
			return fmt.Sprintf("frame %d: false frame %+.60v", i, e), true
		}
		if want := int64(rec.offs[i+1] - cut); d.Offset() != want {
			return fmt.Sprintf("frame %d: Offset = %d, want %d", i, d.Offset(), want), true
		}
	}
	if err := d.Decode(e); err != io.EOF {
		return fmt.Sprintf("after the last frame: Decode = %v, want io.EOF", err), err == nil
	}
	if d.Skipped() != skip || d.Offset() != int64(rec.offs[last]-cut) {
		return fmt.Sprintf("at EOF: Skipped = %d, Offset = %d; want %d, %d", d.Skipped(), d.Offset(), skip, rec.offs[last]-cut), false
	}
	return "", false
}

// event is one Decode result: a frame (e) or a skip, with Offset after it.
type event struct {
	e      *logentry.LogEntry
	skip   int64
	cause  error
	offset int64
}

func (ev event) String() string {
	if ev.e != nil {
		return fmt.Sprintf("frame %.40q @%d", ev.e.Line, ev.offset)
	}
	return fmt.Sprintf("skip %d (%v) @%d", ev.skip, ev.cause, ev.offset)
}

// decodeAll decodes d to io.EOF, retrying iotest.ErrTimeout, and returns
// the frames and skips with the Offset after each.
func decodeAll(t *testing.T, d *Decoder, retry func(error) bool) []event {
	t.Helper()
	var out []event
	var e logentry.LogEntry
	for calls := 0; ; calls++ {
		if calls > 1<<20 {
			t.Fatal("decoder does not terminate")
		}
		err := d.Decode(&e)
		var se *SkipError
		switch {
		case err == nil:
			out = append(out, event{e: cloneEntry(&e), offset: d.Offset()})
		case errors.As(err, &se):
			out = append(out, event{skip: se.Bytes, cause: se.Cause, offset: d.Offset()})
		case err == io.EOF:
			return out
		case retry != nil && retry(err):
		default:
			t.Fatalf("after %v: Decode = %v", out, err)
		}
	}
}

func cloneEntry(e *logentry.LogEntry) *logentry.LogEntry {
	c := *e
	c.Line = bytes.Clone(e.Line)
	if e.PartialLogMetadata != nil {
		m := *e.PartialLogMetadata
		c.PartialLogMetadata = &m
	}
	return &c
}
