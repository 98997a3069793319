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

	"github.com/s3logs/s3logs/driver/logentry"
)

// frame encodes e as one FIFO frame, the way Docker's LogEntryEncoder does.
func frame(t testing.TB, e *logentry.LogEntry) []byte {
	t.Helper()
	p, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return rawFrame(p)
}

func rawFrame(p []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
	return append(out, p...)
}

func sampleEntries() []*logentry.LogEntry {
	return []*logentry.LogEntry{
		{Source: "stdout", TimeNano: 1764256445123456789, Line: []byte("hello world")},
		{Source: "stderr", TimeNano: 2, Line: []byte("oops")},
		{Source: "stdout", TimeNano: 3, Line: bytes.Repeat([]byte("x"), 16*1024), Partial: true,
			PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "abc", Ordinal: 1}},
		{Source: "stdout", TimeNano: 3, Line: []byte("tail"), Partial: true,
			PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "abc", Ordinal: 2, Last: true}},
		{Source: "stdout", TimeNano: 4}, // empty line
		{Source: "custom", TimeNano: -5, Line: []byte("other source")},
		{Source: "custom", TimeNano: 6, Line: []byte("again")},
		{}, // every field default: a 0-length frame
		{Source: "stderr", TimeNano: 7, Line: []byte("partial without metadata"), Partial: true},
	}
}

func sampleStream(t testing.TB) []byte {
	var buf []byte
	for _, e := range sampleEntries() {
		buf = append(buf, frame(t, e)...)
	}
	return buf
}

func equalEntry(a, b *logentry.LogEntry) bool {
	if a.Source != b.Source || a.TimeNano != b.TimeNano || !bytes.Equal(a.Line, b.Line) || a.Partial != b.Partial {
		return false
	}
	ma, mb := a.PartialLogMetadata, b.PartialLogMetadata
	if (ma == nil) != (mb == nil) {
		return false
	}
	return ma == nil || *ma == *mb
}

func TestDecodeReaders(t *testing.T) {
	stream := sampleStream(t)
	want := sampleEntries()
	readers := map[string]func(io.Reader) io.Reader{
		"plain":    func(r io.Reader) io.Reader { return r },
		"onebyte":  iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"dataerr":  iotest.DataErrReader,
		"timeout":  iotest.TimeoutReader,
		"onehalf":  func(r io.Reader) io.Reader { return iotest.OneByteReader(iotest.HalfReader(r)) },
		"dataerr1": func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) },
	}
	for name, wrap := range readers {
		for _, bufSize := range []int{0, 16, 100, 20000} {
			t.Run(fmt.Sprintf("%s/buf%d", name, bufSize), func(t *testing.T) {
				d := NewDecoder(wrap(bytes.NewReader(stream)), bufSize)
				var e logentry.LogEntry
				var got []*logentry.LogEntry
				timeouts := 0
				for i := 0; i < 100; i++ {
					err := d.Decode(&e)
					if errors.Is(err, iotest.ErrTimeout) {
						timeouts++
						continue // transient: the decoder must resume where it was
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("entry %d: %v", len(got), err)
					}
					c := e
					c.Line = append([]byte(nil), e.Line...)
					if e.PartialLogMetadata != nil {
						m := *e.PartialLogMetadata
						c.PartialLogMetadata = &m
					}
					got = append(got, &c)
				}
				if len(got) != len(want) {
					t.Fatalf("got %d entries, want %d", len(got), len(want))
				}
				for i := range want {
					if !equalEntry(got[i], want[i]) {
						t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
					}
				}
				if name == "timeout" && timeouts != 1 {
					t.Errorf("saw %d timeouts, want 1", timeouts)
				}
				if err := d.Decode(&e); err != io.EOF {
					t.Errorf("Decode after EOF = %v, want io.EOF", err)
				}
			})
		}
	}
}

func TestDecodeResetsFields(t *testing.T) {
	partial := &logentry.LogEntry{Source: "stdout", TimeNano: 9, Line: []byte("abc"), Partial: true,
		PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "id", Ordinal: 3, Last: true}}
	stream := append(frame(t, partial), frame(t, &logentry.LogEntry{Line: []byte("z")})...)
	d := NewDecoder(bytes.NewReader(stream), 0)
	var e logentry.LogEntry
	if err := d.Decode(&e); err != nil {
		t.Fatal(err)
	}
	if !equalEntry(&e, partial) {
		t.Fatalf("got %+v", e)
	}
	if err := d.Decode(&e); err != nil {
		t.Fatal(err)
	}
	want := &logentry.LogEntry{Line: []byte("z")}
	if !equalEntry(&e, want) {
		t.Fatalf("second entry kept old fields: %+v", e)
	}
}

func TestDecodeZeroLength(t *testing.T) {
	d := NewDecoder(bytes.NewReader([]byte{0, 0, 0, 0}), 0)
	e := logentry.LogEntry{Source: "stdout", TimeNano: 1, Line: []byte("old"), Partial: true}
	if err := d.Decode(&e); err != nil {
		t.Fatalf("Decode = %v, want nil", err)
	}
	if !equalEntry(&e, &logentry.LogEntry{}) {
		t.Fatalf("got %+v, want empty entry", e)
	}
	if err := d.Decode(&e); err != io.EOF {
		t.Fatalf("second Decode = %v, want io.EOF", err)
	}
}

// countingReader counts bytes handed out, to prove the decoder does not read
// (or allocate) a payload it refused.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestDecodeFrameTooLarge checks that a refused length prefix is not sticky:
// the decoder resynchronises on the next frame, without reading the claimed
// payload into memory.
func TestDecodeFrameTooLarge(t *testing.T) {
	next := frame(t, entryAt(0, 0, []byte("after")))
	for _, n := range []uint32{MaxFrameSize + 1, 1<<32 - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			hdr := binary.BigEndian.AppendUint32(nil, n)
			claimed := strings.Repeat("a", 64) // part of the claimed payload
			in := append(append(hdr, claimed...), next...)
			d := NewDecoderOptions(iotest.OneByteReader(bytes.NewReader(in)), Options{BufSize: 16, Now: testNow})
			var e logentry.LogEntry
			err := d.Decode(&e)
			var se *SkipError
			if !errors.Is(err, ErrFrameTooLarge) || !errors.As(err, &se) || se.Bytes != int64(4+len(claimed)) {
				t.Fatalf("Decode = %v, want a SkipError of %d bytes caused by ErrFrameTooLarge", err, 4+len(claimed))
			}
			if err := d.Decode(&e); err != nil || string(e.Line) != "after" {
				t.Fatalf("frame after the refused one: %v %q", err, e.Line)
			}
			if err := d.Decode(&e); err != io.EOF {
				t.Fatalf("Decode = %v, want io.EOF", err)
			}
			if len(d.buf) > 2*len(in) { // in proportion to the data, not to n
				t.Errorf("buffer grew to %d bytes for %d bytes of data", len(d.buf), len(in))
			}
		})
	}
}

func TestDecodeMaxFrameSize(t *testing.T) {
	// Build a frame of exactly MaxFrameSize bytes: field 3 tag (1 byte) +
	// 3-byte varint length + payload.
	lineLen := MaxFrameSize - 4
	e := &logentry.LogEntry{Line: bytes.Repeat([]byte("y"), lineLen)}
	if e.Size() != MaxFrameSize {
		t.Fatalf("test frame is %d bytes, want %d", e.Size(), MaxFrameSize)
	}
	for _, bufSize := range []int{0, 4096, MaxFrameSize + 4} {
		d := NewDecoder(bytes.NewReader(frame(t, e)), bufSize)
		var got logentry.LogEntry
		if err := d.Decode(&got); err != nil {
			t.Fatalf("buf %d: %v", bufSize, err)
		}
		if len(got.Line) != lineLen {
			t.Fatalf("buf %d: line of %d bytes, want %d", bufSize, len(got.Line), lineLen)
		}
	}
}

func TestDecodeTruncated(t *testing.T) {
	full := frame(t, &logentry.LogEntry{Source: "stdout", Line: bytes.Repeat([]byte("z"), 300)})
	for _, bufSize := range []int{0, 16} { // in-place and large-frame paths
		for _, cut := range []int{1, 2, 3, 4, 5, 100, len(full) - 1} {
			t.Run(fmt.Sprintf("buf%d/cut%d", bufSize, cut), func(t *testing.T) {
				stream := append(frame(t, &logentry.LogEntry{Line: []byte("ok")}), full[:cut]...)
				d := NewDecoder(iotest.HalfReader(bytes.NewReader(stream)), bufSize)
				var e logentry.LogEntry
				if err := d.Decode(&e); err != nil {
					t.Fatal(err)
				}
				err := d.Decode(&e)
				var se *SkipError
				if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &se) || se.Bytes != int64(cut) {
					t.Fatalf("Decode = %v, want ErrTruncated and io.ErrUnexpectedEOF in a SkipError of %d bytes", err, cut)
				}
				if err := d.Decode(&e); err != io.EOF {
					t.Fatalf("Decode after truncation = %v, want io.EOF", err)
				}
			})
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	cases := map[string][]byte{
		"bad varint":       {0x10, 0x80},
		"length too long":  {0x1a, 0x05, 'a'},
		"wrong wire type":  {0x08, 0x01},       // source as varint
		"field zero":       {0x00, 0x01},       // tag 0
		"end group":        {0x0c},             // field 1, wire type 4
		"wire type 7":      {0x3f},             // unknown field 7, wire type 7
		"bad metadata":     {0x2a, 0x01, 0x80}, // metadata containing a cut varint
		"varint overflow":  append([]byte{0x10}, bytes.Repeat([]byte{0xff}, 10)...),
		"unclosed group":   {0x33},          // field 6 start group, never ended
		"fixed64 too long": {0x31, 1, 2, 3}, // field 6 fixed64 with 3 bytes
	}
	// A corrupt payload makes the decoder resynchronise, so the next frame
	// must pass the resync rules (source, time).
	next := frame(t, &logentry.LogEntry{Source: "stderr", TimeNano: baseTime.UnixNano(), Line: []byte("after")})
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			var ref logentry.LogEntry
			if ref.Unmarshal(payload) == nil {
				t.Fatalf("gogo accepts %x; test case is wrong", payload)
			}
			for _, bufSize := range []int{0, 16} {
				d := NewDecoderOptions(bytes.NewReader(append(rawFrame(payload), next...)), Options{BufSize: bufSize, Now: testNow})
				var e logentry.LogEntry
				var se *SkipError
				if err := d.Decode(&e); !errors.Is(err, ErrCorrupt) || !errors.As(err, &se) || se.Bytes != int64(4+len(payload)) {
					t.Fatalf("Decode = %v, want ErrCorrupt in a SkipError of %d bytes", err, 4+len(payload))
				}
				if err := d.Decode(&e); err != nil || string(e.Line) != "after" {
					t.Fatalf("frame after corrupt one: %v %q", err, e.Line)
				}
			}
		})
	}
}

func TestDecodeUnknownFieldsSkipped(t *testing.T) {
	// Unknown fields of every wire type, including a nested group, then line.
	payload := []byte{
		0x30, 0x96, 0x01, // field 6 varint
		0x39, 1, 2, 3, 4, 5, 6, 7, 8, // field 7 fixed64
		0x42, 0x02, 'h', 'i', // field 8 bytes
		0x4b, 0x08, 0x01, 0x53, 0x54, 0x4c, // field 9 group { field 1 varint, group 10 {} }
		0x55, 1, 2, 3, 4, // field 10 fixed32
		0x1a, 0x02, 'o', 'k',
	}
	var ref logentry.LogEntry
	if err := ref.Unmarshal(payload); err != nil {
		t.Fatalf("gogo rejects the test payload: %v", err)
	}
	d := NewDecoder(bytes.NewReader(rawFrame(payload)), 0)
	var e logentry.LogEntry
	if err := d.Decode(&e); err != nil {
		t.Fatal(err)
	}
	if !equalEntry(&e, &ref) || string(e.Line) != "ok" {
		t.Fatalf("got %+v, want %+v", e, ref)
	}
}

func TestDecodeMetadataMerges(t *testing.T) {
	// Two occurrences of field 5 merge, as protobuf requires.
	m1, _ := (&logentry.PartialLogEntryMetadata{Id: "a", Ordinal: 2}).Marshal()
	m2, _ := (&logentry.PartialLogEntryMetadata{Last: true}).Marshal()
	payload := append(append([]byte{0x2a, byte(len(m1))}, m1...), append([]byte{0x2a, byte(len(m2))}, m2...)...)
	d := NewDecoder(bytes.NewReader(rawFrame(payload)), 0)
	var e logentry.LogEntry
	if err := d.Decode(&e); err != nil {
		t.Fatal(err)
	}
	want := logentry.PartialLogEntryMetadata{Id: "a", Ordinal: 2, Last: true}
	if e.PartialLogMetadata == nil || *e.PartialLogMetadata != want {
		t.Fatalf("metadata = %+v, want %+v", e.PartialLogMetadata, want)
	}
}

// TestDecodeTerminates guards against endless loops: on any input a caller
// that stops at io.EOF or another error (and continues after a frame or a
// SkipError) finishes within one call per input byte.
func TestDecodeTerminates(t *testing.T) {
	inputs := [][]byte{
		nil,
		{0},
		{0, 0, 0, 1, 0xff},
		bytes.Repeat([]byte{0, 0, 0, 1, 0x80}, 50),
		bytes.Repeat([]byte{0xff}, 100),
		bytes.Repeat([]byte{0, 0, 0, 0}, 100),
		sampleStream(t),
	}
	for i, in := range inputs {
		for _, bufSize := range []int{0, 16} {
			if n := drain(NewDecoder(iotest.OneByteReader(bytes.NewReader(in)), bufSize)); n > len(in)+1 {
				t.Errorf("input %d: %d Decode calls for %d bytes", i, n, len(in))
			}
		}
	}
}

// drain decodes until a terminal error and returns the number of calls; it
// panics after an absurd number of calls so a loop fails loudly.
func drain(d *Decoder) int {
	var e logentry.LogEntry
	for n := 1; ; n++ {
		if n > 1<<20 {
			panic("decoder does not terminate")
		}
		err := d.Decode(&e)
		if err == nil || errors.Is(err, ErrSkipped) {
			continue
		}
		return n
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecodeReaderError(t *testing.T) {
	boom := errors.New("boom")
	stream := frame(t, &logentry.LogEntry{Line: []byte("x")})
	d := NewDecoder(io.MultiReader(bytes.NewReader(stream[:3]), errReader{boom}), 0)
	var e logentry.LogEntry
	if err := d.Decode(&e); !errors.Is(err, boom) {
		t.Fatalf("Decode = %v, want wrapped reader error", err)
	}
}

func TestBuffered(t *testing.T) {
	stream := append(frame(t, &logentry.LogEntry{Line: []byte("a")}), frame(t, &logentry.LogEntry{Line: []byte("b")})...)
	d := NewDecoder(bytes.NewReader(stream), 0)
	if d.Buffered() != 0 {
		t.Fatalf("Buffered before reading = %d", d.Buffered())
	}
	var e logentry.LogEntry
	if err := d.Decode(&e); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Buffered(), len(stream)/2; got != want {
		t.Fatalf("Buffered after first frame = %d, want %d", got, want)
	}
	if err := d.Decode(&e); err != nil {
		t.Fatal(err)
	}
	if d.Buffered() != 0 {
		t.Fatalf("Buffered after last frame = %d", d.Buffered())
	}
}

// loopReader replays data forever.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func TestDecodeAllocs(t *testing.T) {
	var stream []byte
	for i := 0; i < 100; i++ {
		src := "stdout"
		if i%3 == 0 {
			src = "stderr"
		}
		stream = append(stream, frame(t, &logentry.LogEntry{Source: src, TimeNano: int64(i), Line: bytes.Repeat([]byte("q"), i*7)})...)
	}
	d := NewDecoder(&loopReader{data: stream}, 0)
	var e logentry.LogEntry
	for i := 0; i < 200; i++ { // warm up: grow e.Line
		if err := d.Decode(&e); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := d.Decode(&e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Decode, want 0", allocs)
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{80, 1024, 16 * 1024} {
		b.Run(fmt.Sprintf("line%d", size), func(b *testing.B) {
			var stream []byte
			for i := 0; i < 64; i++ {
				src := "stdout"
				if i%2 == 1 {
					src = "stderr"
				}
				stream = append(stream, frame(b, &logentry.LogEntry{Source: src, TimeNano: 1764256445123456789 + int64(i), Line: bytes.Repeat([]byte("a"), size)})...)
			}
			d := NewDecoder(&loopReader{data: stream}, 0)
			var e logentry.LogEntry
			b.SetBytes(int64(len(stream) / 64))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := d.Decode(&e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResyncSearch measures the search through log text that holds no
// frame (a re-attach in the middle of a long line), then the frame after it.
func BenchmarkResyncSearch(b *testing.B) {
	garbage := bytes.Repeat([]byte(`{"level":"info","msg":"a long line cut by a crash"} `), 1300) // ~64 KiB
	in := append(garbage, frame(b, entryAt(0, 0, []byte("next")))...)
	var rd bytes.Reader
	d := NewDecoderOptions(nil, Options{BufSize: 64 << 10, Now: testNow})
	var e logentry.LogEntry
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(in)
		d.Reset(&rd)
		d.Resync()
		if err := d.Decode(&e); !errors.Is(err, ErrSkipped) {
			b.Fatal(err)
		}
		if err := d.Decode(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecoderShrink: after a frame larger than the read buffer, Shrink
// returns the buffer to its configured size without losing buffered bytes.
func TestDecoderShrink(t *testing.T) {
	big := frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: 1, Line: bytes.Repeat([]byte("y"), 200<<10)})
	small := frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: 2, Line: []byte("after")})
	d := NewDecoderOptions(bytes.NewReader(append(big, small...)), Options{BufSize: 4096})
	var e logentry.LogEntry
	if err := d.Decode(&e); err != nil || len(e.Line) != 200<<10 {
		t.Fatalf("big frame: %v (%d bytes)", err, len(e.Line))
	}
	if len(d.buf) <= 4096 {
		t.Fatalf("buffer did not grow for the big frame: %d", len(d.buf))
	}
	d.Shrink()
	if len(d.buf) != 4096 {
		t.Errorf("buffer after Shrink: %d bytes, want 4096", len(d.buf))
	}
	if err := d.Decode(&e); err != nil || string(e.Line) != "after" {
		t.Fatalf("frame after Shrink: %v %q", err, e.Line)
	}
}
