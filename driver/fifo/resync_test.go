package fifo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
)

// Readers that split the input differently. Results that depend only on the
// bytes (not on how reads split them) must be the same through each.
var (
	allReaders = map[string]func(io.Reader) io.Reader{
		"plain":   func(r io.Reader) io.Reader { return r },
		"onebyte": iotest.OneByteReader,
		"half":    iotest.HalfReader,
		"dataerr": iotest.DataErrReader,
		"timeout": iotest.TimeoutReader,
		"chunk7":  func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 7} },
	}
	// bulkReaders are for inputs of megabytes.
	bulkReaders = map[string]func(io.Reader) io.Reader{
		"plain":     allReaders["plain"],
		"half":      allReaders["half"],
		"timeout":   allReaders["timeout"],
		"chunk4096": func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 4096} },
	}
	// wholeReader reads the whole input at once: for results that depend on
	// what follows a frame (see the "ends exactly at frame end" rule).
	wholeReader = map[string]func(io.Reader) io.Reader{"plain": allReaders["plain"]}
)

// frames returns the events of decoding frames from..to-1 of rec, the first
// starting at stream offset start.
func frames(rec *recording, from, to, start int) []event {
	var out []event
	for i := from; i < to; i++ {
		out = append(out, event{e: rec.entries[i], offset: int64(start + rec.offs[i+1] - rec.offs[from])})
	}
	return out
}

func skipped(n int, cause error) event {
	return event{skip: int64(n), cause: cause, offset: int64(n)}
}

// after shifts the offsets of evs by base.
func after(base int, evs ...event) []event {
	for i := range evs {
		evs[i].offset += int64(base)
	}
	return evs
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestResync(t *testing.T) {
	small := shortLines(6, false)
	so := small.offs
	big := hugeLines(1, false)
	for _, e := range shortLines(3, false).entries {
		big.add(e)
	}
	bo := big.offs

	good := entryAt(100, 0, []byte("good"))
	now := testNow()
	withTime := func(ts int64) []byte {
		return frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: ts, Line: []byte("t")})
	}
	xyz := frame(t, &logentry.LogEntry{Source: "xyz", TimeNano: good.TimeNano, Line: []byte("x")})
	zeroTime := withTime(0)
	old := withTime(now.Add(-DefaultMaxPast - 1).UnixNano())
	future := withTime(now.Add(DefaultMaxFuture + 1).UnixNano())
	noSource := frame(t, &logentry.LogEntry{TimeNano: good.TimeNano, Line: []byte("x")})
	corrupt := rawFrame([]byte{0x08, 0x01})
	garbage := []byte(`ut of a line from before the crash","seq":17}`)
	zeros := []byte{0, 0, 0, 0, 0, 0x10, 0, 1, 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0}

	type tc struct {
		name    string
		in      []byte
		resync  bool
		want    []event
		readers map[string]func(io.Reader) io.Reader
	}
	cases := []tc{
		{"clean stream after Resync", small.data, true, frames(small, 0, 6, 0), allReaders},
		{"1 MiB frame after Resync", big.data, true, frames(big, 0, 4, 0), bulkReaders},
		{"garbage prefix", cat(garbage, small.data), true,
			append([]event{skipped(len(garbage), ErrResyncRequested)}, frames(small, 0, 6, len(garbage))...), allReaders},
		{"garbage prefix with zeros", cat(zeros, small.data), true,
			append([]event{skipped(len(zeros), ErrResyncRequested)}, frames(small, 0, 6, len(zeros))...), allReaders},
		{"4 GiB length prefix", cat([]byte{0xff, 0xff, 0xff, 0xff}, small.data), false,
			append([]event{skipped(4, ErrFrameTooLarge)}, frames(small, 0, 6, 4)...), allReaders},
		{"MaxFrameSize+1 length prefix and its payload", cat([]byte{0, 0x10, 0, 1}, []byte(strings.Repeat("a", 100)), small.data), false,
			append([]event{skipped(104, ErrFrameTooLarge)}, frames(small, 0, 6, 104)...), allReaders},
		{"corrupt payload", cat(corrupt, small.data), false,
			append([]event{skipped(len(corrupt), ErrCorrupt)}, frames(small, 0, 6, len(corrupt))...), allReaders},
		{"torn frame at the end", small.data[:len(small.data)-3], false,
			append(frames(small, 0, 5, 0), after(so[5], skipped(so[6]-so[5]-3, ErrTruncated))...), allReaders},
		{"torn header at the end", small.data[:so[5]+2], false,
			append(frames(small, 0, 5, 0), after(so[5], skipped(2, ErrTruncated))...), allReaders},
		{"EOF during search", []byte("no frame here\x00\x00\x01"), true,
			[]event{skipped(16, ErrResyncRequested)}, allReaders},
		{"EOF during search after a 4 GiB prefix", []byte("\xff\xff\xff\xffabc"), false,
			[]event{skipped(7, ErrFrameTooLarge)}, allReaders},
		{"cut and torn end", small.data[so[1]+5 : len(small.data)-3], true,
			append(append([]event{skipped(so[2]-so[1]-5, ErrResyncRequested)}, frames(small, 2, 5, so[2]-so[1]-5)...),
				after(so[5]-so[1]-5, skipped(so[6]-so[5]-3, ErrTruncated))...), allReaders},
		{"frame ending at EOF", cat(garbage, frame(t, good)), true,
			[]event{skipped(len(garbage), ErrResyncRequested), {e: good, offset: int64(len(garbage) + len(frame(t, good)))}}, allReaders},
		{"source xyz", cat(xyz, small.data), true,
			append([]event{skipped(len(xyz), ErrResyncRequested)}, frames(small, 0, 6, len(xyz))...), allReaders},
		{"no source", cat(noSource, small.data), true,
			append([]event{skipped(len(noSource), ErrResyncRequested)}, frames(small, 0, 6, len(noSource))...), allReaders},
		{"time 0", cat(zeroTime, small.data), true,
			append([]event{skipped(len(zeroTime), ErrResyncRequested)}, frames(small, 0, 6, len(zeroTime))...), allReaders},
		{"time too far in the past", cat(old, small.data), true,
			append([]event{skipped(len(old), ErrResyncRequested)}, frames(small, 0, 6, len(old))...), allReaders},
		{"time too far in the future", cat(future, small.data), true,
			append([]event{skipped(len(future), ErrResyncRequested)}, frames(small, 0, 6, len(future))...), allReaders},
		{"zero-length frame", cat([]byte{0, 0, 0, 0}, small.data), true,
			append([]event{skipped(4, ErrResyncRequested)}, frames(small, 0, 6, 4)...), allReaders},
		{"source xyz in normal mode is returned", xyz, false,
			[]event{{e: &logentry.LogEntry{Source: "xyz", TimeNano: good.TimeNano, Line: []byte("x")}, offset: int64(len(xyz))}}, allReaders},
		{"frame followed by an implausible header", cat(frame(t, good), []byte{0xff, 0xff, 0xff, 0xff}, small.data), true,
			append([]event{skipped(len(frame(t, good))+4, ErrResyncRequested)}, frames(small, 0, 6, len(frame(t, good))+4)...), wholeReader},
		{"frame followed by a torn header at EOF", cat(frame(t, good), []byte{0, 0}), true,
			[]event{skipped(len(frame(t, good))+2, ErrResyncRequested)}, wholeReader},
	}
	for k := 1; k <= 3; k++ {
		c := so[2] + k
		cases = append(cases, tc{fmt.Sprintf("cut %d bytes into a header", k), small.data[c:], true,
			append([]event{skipped(so[3]-c, ErrResyncRequested)}, frames(small, 3, 6, so[3]-c)...), allReaders})
	}
	for _, c := range []int{so[2] + 4, so[2] + 9, so[3] - 1} {
		cases = append(cases, tc{fmt.Sprintf("cut %d bytes into a frame", c-so[2]), small.data[c:], true,
			append([]event{skipped(so[3]-c, ErrResyncRequested)}, frames(small, 3, 6, so[3]-c)...), allReaders})
	}
	for _, c := range []int{1, 3, 6, 12, 500_000, bo[1] - 3} {
		cases = append(cases, tc{fmt.Sprintf("cut %d bytes into a 1 MiB frame", c), big.data[c:], true,
			append([]event{skipped(bo[1]-c, ErrResyncRequested)}, frames(big, 1, 4, bo[1]-c)...), bulkReaders})
	}

	for _, c := range cases {
		for rname, wrap := range c.readers {
			for _, bufSize := range []int{16, 100, 0} {
				t.Run(fmt.Sprintf("%s/%s/buf%d", c.name, rname, bufSize), func(t *testing.T) {
					d := NewDecoderOptions(wrap(bytes.NewReader(c.in)), Options{BufSize: bufSize, Now: testNow, Resync: c.resync})
					got := decodeAll(t, d, func(err error) bool { return errors.Is(err, iotest.ErrTimeout) })
					if !sameEvents(got, c.want) {
						t.Fatalf("got  %v\nwant %v", got, c.want)
					}
					var skipped int64
					for _, ev := range got {
						skipped += ev.skip
					}
					if d.Skipped() != skipped || d.Offset() != int64(len(c.in)) {
						t.Fatalf("at EOF: Skipped %d, Offset %d; want %d, %d", d.Skipped(), d.Offset(), skipped, len(c.in))
					}
					initial := bufSize
					if initial == 0 {
						initial = DefaultBufSize
					}
					if len(d.buf) > max(initial, min(2*len(c.in), MaxFrameSize+8)) {
						t.Fatalf("buffer grew to %d bytes for %d bytes of input", len(d.buf), len(c.in))
					}
				})
			}
		}
	}
}

func sameEvents(got, want []event) bool {
	if len(got) != len(want) {
		return false
	}
	for i, g := range got {
		w := want[i]
		if g.offset != w.offset || (g.e == nil) != (w.e == nil) {
			return false
		}
		if w.e != nil && !equalEntry(g.e, w.e) {
			return false
		}
		if w.e == nil && (g.skip != w.skip || !errors.Is(g.cause, w.cause)) {
			return false
		}
	}
	return true
}

func TestResyncMidStream(t *testing.T) {
	rec := shortLines(5, false)
	d := NewDecoderOptions(bytes.NewReader(rec.data), Options{Now: testNow})
	var e logentry.LogEntry
	for i := range 5 {
		if i == 2 {
			d.Resync()
			d.Resync() // no effect
		}
		if err := d.Decode(&e); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !equalEntry(&e, rec.entries[i]) || d.Offset() != int64(rec.offs[i+1]) {
			t.Fatalf("frame %d: got %+v at %d", i, e, d.Offset())
		}
	}
	if err := d.Decode(&e); err != io.EOF || d.Skipped() != 0 {
		t.Fatalf("Decode = %v, Skipped = %d; want io.EOF, 0", err, d.Skipped())
	}
}

func TestResyncTimeWindow(t *testing.T) {
	now := testNow()
	for _, tc := range []struct {
		name               string
		ts                 time.Time
		accept             bool
		maxPast, maxFuture time.Duration // Options
	}{
		{name: "oldest accepted", ts: now.Add(-DefaultMaxPast), accept: true},
		{name: "newest accepted", ts: now.Add(DefaultMaxFuture), accept: true},
		{name: "1ns too old", ts: now.Add(-DefaultMaxPast - 1)},
		{name: "1ns too new", ts: now.Add(DefaultMaxFuture + 1)},
		{name: "custom window accepts", ts: now.Add(-time.Minute), accept: true, maxPast: time.Minute, maxFuture: time.Second},
		{name: "custom window refuses past", ts: now.Add(-time.Minute - 1), maxPast: time.Minute, maxFuture: time.Second},
		{name: "custom window refuses future", ts: now.Add(time.Second + 1), maxPast: time.Minute, maxFuture: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := frame(t, &logentry.LogEntry{Source: "stderr", TimeNano: tc.ts.UnixNano(), Line: []byte("x")})
			d := NewDecoderOptions(bytes.NewReader(f), Options{Now: testNow, MaxPast: tc.maxPast, MaxFuture: tc.maxFuture, Resync: true})
			var e logentry.LogEntry
			err := d.Decode(&e)
			if tc.accept && err != nil || !tc.accept && !errors.Is(err, ErrSkipped) {
				t.Fatalf("Decode = %v, accept %v", err, tc.accept)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	for name, d := range map[string]*Decoder{
		"NewDecoder":        NewDecoder(nil, 0),
		"zero Options":      NewDecoderOptions(nil, Options{}),
		"negative Options":  NewDecoderOptions(nil, Options{BufSize: -1, MaxPast: -1, MaxFuture: -1}),
		"NewDecoder tiny":   NewDecoder(nil, 1),
		"NewDecoder 100000": NewDecoder(nil, 100000),
	} {
		o := d.opts
		wantBuf := DefaultBufSize
		switch name {
		case "NewDecoder tiny":
			wantBuf = 16
		case "NewDecoder 100000":
			wantBuf = 100000
		}
		if len(d.buf) != wantBuf || o.MaxPast != DefaultMaxPast || o.MaxFuture != DefaultMaxFuture || o.Now == nil || o.Resync || d.resync {
			t.Errorf("%s: buffer %d, options %+v", name, len(d.buf), o)
		}
	}
}

func TestOffsetNormal(t *testing.T) {
	rec := shortLines(50, false)
	d := NewDecoder(iotest.HalfReader(bytes.NewReader(rec.data)), 64)
	var e logentry.LogEntry
	read := 0
	for i := range rec.entries {
		if err := d.Decode(&e); err != nil {
			t.Fatal(err)
		}
		if d.Offset() != int64(rec.offs[i+1]) {
			t.Fatalf("frame %d: Offset %d, want %d", i, d.Offset(), rec.offs[i+1])
		}
		read = max(read, int(d.Offset())+d.Buffered())
	}
	if read > len(rec.data) || d.Skipped() != 0 {
		t.Fatalf("read %d bytes of %d, skipped %d", read, len(rec.data), d.Skipped())
	}
}

// scriptReader returns its chunks one per Read, then io.EOF; a nil chunk
// returns errBoom instead.
type scriptReader struct{ chunks [][]byte }

var errBoom = errors.New("boom")

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	c := s.chunks[0]
	if c == nil {
		s.chunks = s.chunks[1:]
		return 0, errBoom
	}
	n := copy(p, c)
	if s.chunks[0] = c[n:]; len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

func TestResyncReadError(t *testing.T) {
	rec := shortLines(3, false)
	garbage := []byte("garbage without a zero byte")
	d := NewDecoderOptions(&scriptReader{chunks: [][]byte{garbage, nil, rec.data}}, Options{Now: testNow, Resync: true})
	var e logentry.LogEntry
	err := d.Decode(&e)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Decode = %v, want the reader's error", err)
	}
	if d.Offset() != int64(len(garbage)) || d.Skipped() != int64(len(garbage)) {
		t.Fatalf("after the read error: Offset %d, Skipped %d; want %d", d.Offset(), d.Skipped(), len(garbage))
	}
	var se *SkipError
	if err := d.Decode(&e); !errors.As(err, &se) || se.Bytes != int64(len(garbage)) {
		t.Fatalf("Decode = %v, want a SkipError of %d bytes", err, len(garbage))
	}
	for i := range rec.entries {
		if err := d.Decode(&e); err != nil || !equalEntry(&e, rec.entries[i]) {
			t.Fatalf("frame %d: %v %+v", i, err, e)
		}
	}
}

// TestResyncLiveWriter checks that on a live stream a frame is returned as
// soon as it has arrived whole and nothing follows it yet, that a candidate
// with a large length does not stall the search when its first bytes already
// show it is not a LogEntry, and that a partial header after a frame makes the
// decoder wait rather than decide.
func TestResyncLiveWriter(t *testing.T) {
	rec := shortLines(3, false)
	f0 := rec.data[:rec.offs[1]]
	falseBig := []byte{0, 0x0f, 0, 0, 0xff, 0xff} // 983040 bytes claimed; 0xff... is no field
	for _, tc := range []struct {
		name   string
		writes [][]byte // each must leave Decode able to return
		skip   int
	}{
		{"garbage then a frame", [][]byte{cat([]byte("tail"), f0)}, 4},
		{"a false large candidate then a frame", [][]byte{cat(falseBig, f0)}, len(falseBig)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pr.Close()
			go func() {
				for _, w := range tc.writes {
					if _, err := pw.Write(w); err != nil {
						return
					}
				}
				// Then stay open: the decoder must not need more.
			}()
			d := NewDecoderOptions(pr, Options{Now: testNow, Resync: true, BufSize: 4096})
			done := make(chan error, 1)
			var e logentry.LogEntry
			go func() {
				var se *SkipError
				if err := d.Decode(&e); !errors.As(err, &se) || se.Bytes != int64(tc.skip) {
					done <- fmt.Errorf("first Decode = %v, want a skip of %d", err, tc.skip)
					return
				}
				if err := d.Decode(&e); err != nil || !equalEntry(&e, rec.entries[0]) {
					done <- fmt.Errorf("second Decode = %v %+v", err, e)
					return
				}
				done <- nil
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Decode waits for data it does not need")
			}
			pw.Close()
		})
	}

	t.Run("partial next header", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pr.Close()
		d := NewDecoderOptions(pr, Options{Now: testNow, Resync: true, BufSize: 4096})
		done := make(chan error, 1)
		go func() {
			var e logentry.LogEntry
			var se *SkipError
			err := d.Decode(&e)
			if !errors.As(err, &se) || se.Bytes != 4 {
				done <- fmt.Errorf("Decode = %v, want a skip of 4", err)
				return
			}
			done <- nil
		}()
		if _, err := pw.Write(cat([]byte("tail"), f0, rec.data[rec.offs[1]:rec.offs[1]+2])); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("Decode decided before the next header arrived: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		go pw.Write(rec.data[rec.offs[1]+2:])
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Decode does not return once the next header arrived")
		}
		pw.Close()
	})
}

// TestResyncMemory checks that a plausible length the data does not back
// costs memory in proportion to the data, and that a refused length costs
// none.
func TestResyncMemory(t *testing.T) {
	// 0x0a 0x06 "stdout" 0x1a then a 3-byte length: a valid start of a
	// LogEntry whose line claims the rest of a 1 MiB payload.
	n := MaxFrameSize
	hdr := binary.BigEndian.AppendUint32(nil, uint32(n))
	prefix := cat(hdr, []byte("\x0a\x06stdout\x1a"), binary.AppendUvarint(nil, uint64(n-8-4)))
	in := cat(prefix, bytes.Repeat([]byte("z"), 1000))
	d := NewDecoderOptions(iotest.HalfReader(bytes.NewReader(in)), Options{BufSize: 64, Resync: true, Now: testNow})
	var e logentry.LogEntry
	var se *SkipError
	if err := d.Decode(&e); !errors.As(err, &se) || se.Bytes != int64(len(in)) {
		t.Fatalf("Decode = %v, want a skip of everything", err)
	}
	if len(d.buf) > 2*len(in) {
		t.Fatalf("buffer grew to %d bytes for %d bytes of data", len(d.buf), len(in))
	}

	d = NewDecoder(bytes.NewReader(cat([]byte{0xff, 0xff, 0xff, 0xff}, bytes.Repeat([]byte{0, 0, 0, 0xff}, 1000))), 64)
	if err := d.Decode(&e); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Decode = %v, want ErrFrameTooLarge", err)
	}
	if len(d.buf) != 64 {
		t.Fatalf("buffer grew to %d bytes", len(d.buf))
	}
}

func TestSkipError(t *testing.T) {
	cause := fmt.Errorf("%w: 7-byte frame: x", ErrCorrupt)
	var err error = &SkipError{Bytes: 12, Cause: cause}
	if !errors.Is(err, ErrSkipped) || !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("errors.Is on %v is wrong", err)
	}
	if got, want := err.Error(), "fifo: skipped 12 bytes to resynchronise after: fifo: corrupt frame: 7-byte frame: x"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(&SkipError{Bytes: 1}, ErrSkipped) {
		t.Fatal("a SkipError without cause does not match ErrSkipped")
	}
}
