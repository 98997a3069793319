package record

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/s3logs/s3logs/driver/logentry"
)

func full(src string, t int64, line string) *logentry.LogEntry {
	return &logentry.LogEntry{Source: src, TimeNano: t, Line: []byte(line)}
}

// part is a chunk as daemons since 18.06 send it.
func part(src string, t int64, line, id string, ord int32, last bool) *logentry.LogEntry {
	return &logentry.LogEntry{Source: src, TimeNano: t, Line: []byte(line), Partial: true,
		PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: id, Ordinal: ord, Last: last}}
}

// oldPart is a chunk as daemons before 18.06 send it (no metadata).
func oldPart(src string, t int64, line string) *logentry.LogEntry {
	return &logentry.LogEntry{Source: src, TimeNano: t, Line: []byte(line), Partial: true}
}

type rec struct {
	line    string
	newline bool
	src     string
	t       int64
}

func (r rec) String() string {
	l := r.line
	if len(l) > 40 {
		l = fmt.Sprintf("%s...(%d bytes)", l[:20], len(l))
	}
	return fmt.Sprintf("{%q nl=%v %s t=%d}", l, r.newline, r.src, r.t)
}

// collect runs entries through a fresh Assembler, then Flush.
func collect(t *testing.T, entries []*logentry.LogEntry) []rec {
	t.Helper()
	var got []rec
	emit := func(r *Record) error {
		if len(r.Line) > MaxRecordSize {
			t.Fatalf("record of %d bytes exceeds MaxRecordSize", len(r.Line))
		}
		got = append(got, rec{string(r.Line), r.Newline, r.Source, r.Time.UnixNano()})
		return nil
	}
	a := NewAssembler()
	for _, e := range entries {
		if err := a.Add(e, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(emit); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAssembler(t *testing.T) {
	big := strings.Repeat("a", MaxRecordSize)
	chunk := strings.Repeat("c", 16*1024)
	tests := []struct {
		name    string
		entries []*logentry.LogEntry
		want    []rec
	}{
		{"non-partial", []*logentry.LogEntry{full("stdout", 1, "hello"), full("stderr", 2, "")},
			[]rec{{"hello", true, "stdout", 1}, {"", true, "stderr", 2}}},
		{"chain", []*logentry.LogEntry{
			part("stdout", 5, chunk, "id1", 1, false),
			part("stdout", 5, chunk, "id1", 2, false),
			part("stdout", 9, "end", "id1", 3, true)},
			[]rec{{chunk + chunk + "end", true, "stdout", 5}}},
		{"chain ending with empty last chunk", []*logentry.LogEntry{
			part("stdout", 5, chunk, "id1", 1, false),
			part("stdout", 5, "", "id1", 2, true)},
			[]rec{{chunk, true, "stdout", 5}}},
		{"last chunk alone", []*logentry.LogEntry{part("stdout", 5, "x", "id1", 1, true)},
			[]rec{{"x", true, "stdout", 5}}},
		{"final line without newline", []*logentry.LogEntry{
			full("stdout", 1, "a"), part("stdout", 2, "no newline", "id1", 1, false)},
			[]rec{{"a", true, "stdout", 1}, {"no newline", false, "stdout", 2}}},
		{"long final line without newline", []*logentry.LogEntry{
			part("stdout", 2, chunk, "id1", 1, false), part("stdout", 2, "rest", "id1", 2, false)},
			[]rec{{chunk + "rest", false, "stdout", 2}}},
		{"interleaved sources", []*logentry.LogEntry{
			part("stdout", 1, "o1", "A", 1, false),
			part("stderr", 2, "e1", "B", 1, false),
			full("stderr", 9, "zzz"), // interrupts stderr's chain
			part("stdout", 1, "o2", "A", 2, true),
			part("stderr", 3, "e2", "C", 1, false)},
			[]rec{{"e1", false, "stderr", 2}, {"zzz", true, "stderr", 9}, {"o1o2", true, "stdout", 1}, {"e2", false, "stderr", 3}}},
		{"new id while pending", []*logentry.LogEntry{
			part("stdout", 1, "a", "A", 1, false), part("stdout", 2, "b", "B", 1, true)},
			[]rec{{"a", false, "stdout", 1}, {"b", true, "stdout", 2}}},
		{"ordinal gap", []*logentry.LogEntry{
			part("stdout", 1, "a", "A", 1, false), part("stdout", 1, "c", "A", 3, false), part("stdout", 1, "d", "A", 4, true)},
			[]rec{{"a", false, "stdout", 1}, {"cd", true, "stdout", 1}}},
		{"ordinal repeated", []*logentry.LogEntry{
			part("stdout", 1, "a", "A", 1, false), part("stdout", 2, "b", "A", 1, true)},
			[]rec{{"a", false, "stdout", 1}, {"b", true, "stdout", 2}}},
		{"chain starting mid-way", []*logentry.LogEntry{
			part("stdout", 1, "c", "A", 3, false), part("stdout", 1, "d", "A", 4, true)},
			[]rec{{"cd", true, "stdout", 1}}},
		{"non-partial while chain pending", []*logentry.LogEntry{
			part("stdout", 1, "a", "A", 1, false), full("stdout", 2, "b")},
			[]rec{{"a", false, "stdout", 1}, {"b", true, "stdout", 2}}},
		{"old daemon line", []*logentry.LogEntry{
			oldPart("stdout", 1, chunk), oldPart("stdout", 2, "x"), full("stdout", 3, "end")},
			[]rec{{chunk + "xend", true, "stdout", 1}}},
		{"old daemon final line without newline", []*logentry.LogEntry{
			full("stdout", 1, "a"), oldPart("stdout", 2, "tail")},
			[]rec{{"a", true, "stdout", 1}, {"tail", false, "stdout", 2}}},
		{"old chain then metadata chunk", []*logentry.LogEntry{
			oldPart("stdout", 1, "a"), part("stdout", 2, "b", "B", 1, true)},
			[]rec{{"a", false, "stdout", 1}, {"b", true, "stdout", 2}}},
		{"metadata chain then old chunk", []*logentry.LogEntry{
			part("stdout", 1, "a", "A", 1, false), oldPart("stdout", 2, "b"), full("stdout", 3, "c")},
			[]rec{{"a", false, "stdout", 1}, {"bc", true, "stdout", 2}}},
		{"metadata without partial flag", []*logentry.LogEntry{
			{Source: "stdout", TimeNano: 1, Line: []byte("a"), PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "A", Ordinal: 1}},
			{Source: "stdout", TimeNano: 1, Line: []byte("b"), PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "A", Ordinal: 2, Last: true}}},
			[]rec{{"ab", true, "stdout", 1}}},
		{"empty partial chunk then EOF", []*logentry.LogEntry{part("stdout", 1, "", "A", 1, false)}, nil},
		{"chain of exactly MaxRecordSize", []*logentry.LogEntry{
			part("stdout", 1, big[:10], "A", 1, false), part("stdout", 1, big[10:], "A", 2, false), part("stdout", 1, "", "A", 3, true)},
			[]rec{{big, true, "stdout", 1}}},
		{"chain beyond MaxRecordSize", []*logentry.LogEntry{
			part("stdout", 1, big[:10], "A", 1, false), part("stdout", 1, big, "A", 2, false), part("stdout", 1, "xyz", "A", 3, true)},
			[]rec{{big, false, "stdout", 1}, {big[:10] + "xyz", true, "stdout", 1}}},
		{"chain beyond MaxRecordSize at EOF", []*logentry.LogEntry{
			part("stdout", 1, big, "A", 1, false), part("stdout", 1, "x", "A", 2, false)},
			[]rec{{big, false, "stdout", 1}, {"x", false, "stdout", 1}}},
		{"old chain beyond MaxRecordSize", []*logentry.LogEntry{
			oldPart("stdout", 1, big), full("stdout", 2, "x")},
			[]rec{{big, false, "stdout", 1}, {"x", true, "stdout", 1}}},
		{"non-partial line beyond MaxRecordSize", []*logentry.LogEntry{full("stdout", 1, big+big+"z")},
			[]rec{{big, false, "stdout", 1}, {big, false, "stdout", 1}, {"z", true, "stdout", 1}}},
		{"non-partial line of exactly MaxRecordSize", []*logentry.LogEntry{full("stdout", 1, big)},
			[]rec{{big, true, "stdout", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, tt.entries)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || len(got) != len(tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("record %d: got %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestAssemblerManySources(t *testing.T) {
	var entries []*logentry.LogEntry
	var want []rec
	n := maxSources + 3
	for i := 0; i < n; i++ {
		entries = append(entries, part(fmt.Sprint("s", i), int64(i), "p", "A", 1, false))
	}
	// The first three sources are evicted (their pending bytes emitted, in
	// least-recently-used order) to make room; the rest are flushed at EOF.
	for i := 0; i < 3; i++ {
		want = append(want, rec{"p", false, fmt.Sprint("s", i), int64(i)})
	}
	for i := 3; i < n; i++ {
		want = append(want, rec{"p", false, fmt.Sprint("s", i), int64(i)})
	}
	got := collect(t, entries)
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	seen := map[rec]bool{}
	for _, r := range got {
		seen[r] = true
	}
	for i, w := range want {
		if !seen[w] {
			t.Errorf("missing %v", w)
		}
		if i < 3 && got[i] != w {
			t.Errorf("record %d = %v, want evicted %v", i, got[i], w)
		}
	}
}

func TestAssemblerEmitError(t *testing.T) {
	boom := errors.New("boom")
	a := NewAssembler()
	fail := func(*Record) error { return boom }
	if err := a.Add(full("stdout", 1, "x"), fail); !errors.Is(err, boom) {
		t.Fatalf("Add = %v, want boom", err)
	}
	if err := a.Add(part("stdout", 1, "a", "A", 1, false), fail); err != nil {
		t.Fatalf("Add of a pending chunk = %v", err)
	}
	if err := a.Flush(fail); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v, want boom", err)
	}
	// Still usable afterwards.
	var got []string
	ok := func(r *Record) error { got = append(got, string(r.Line)); return nil }
	if err := a.Add(full("stdout", 2, "y"), ok); err != nil || len(got) != 1 || got[0] != "y" {
		t.Fatalf("after error: %v %q", err, got)
	}
}

func TestAssemblerLineNotRetained(t *testing.T) {
	// Add must copy partial data: the caller (the fifo decoder) reuses Line.
	a := NewAssembler()
	e := part("stdout", 1, "abc", "A", 1, false)
	var got string
	emit := func(r *Record) error { got = string(r.Line); return nil }
	if err := a.Add(e, emit); err != nil {
		t.Fatal(err)
	}
	copy(e.Line, "XYZ")
	if err := a.Add(part("stdout", 1, "d", "A", 2, true), emit); err != nil {
		t.Fatal(err)
	}
	if got != "abcd" {
		t.Fatalf("got %q, want abcd", got)
	}
}

func TestAssemblerAllocs(t *testing.T) {
	a := NewAssembler()
	emit := func(*Record) error { return nil }
	line := full("stdout", 1, "a normal log line")
	chunk := strings.Repeat("c", 16*1024)
	c1, c2 := part("stderr", 1, chunk, "A", 1, false), part("stderr", 1, "end", "A", 2, true)
	for i := 0; i < 3; i++ { // warm up the stderr buffer
		_ = a.Add(c1, emit)
		_ = a.Add(c2, emit)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := a.Add(line, emit); err != nil {
			t.Fatal(err)
		}
		if err := a.Add(c1, emit); err != nil {
			t.Fatal(err)
		}
		if err := a.Add(c2, emit); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations, want 0", allocs)
	}
}

// FuzzAssembler feeds random entry sequences and checks that, per source,
// concatenating the records' lines (plus "\n" where Newline) gives back the
// bytes the entries describe, and that no record exceeds MaxRecordSize.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{0x00, 0x10, 0x21, 0x32, 0x43})
	f.Add([]byte{0x11, 0x11, 0x12, 0x13, 0x14, 0x03})
	f.Add([]byte{0x21, 0x21, 0x05, 0x81, 0x91, 0xa7})
	f.Add([]byte{0xf1, 0xf1, 0xf1, 0x33, 0xe0, 0x57})
	f.Fuzz(func(t *testing.T, ops []byte) {
		sources := []string{"stdout", "stderr", "other"}
		sizes := []int{0, 1, 3, 100, 16 * 1024, MaxRecordSize - 1, MaxRecordSize, MaxRecordSize + 1}
		want := map[string][]byte{}
		got := map[string][]byte{}
		var counter byte
		a := NewAssembler()
		emit := func(r *Record) error {
			if len(r.Line) > MaxRecordSize {
				t.Fatalf("record of %d bytes", len(r.Line))
			}
			if len(r.Line) == 0 && !r.Newline {
				t.Fatalf("empty record without newline")
			}
			got[r.Source] = append(got[r.Source], r.Line...)
			if r.Newline {
				got[r.Source] = append(got[r.Source], '\n')
			}
			return nil
		}
		large := 0
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			src := sources[int(op&3)%len(sources)]
			size := sizes[int(arg>>5)]
			if size > 16*1024 {
				if large++; large > 4 { // keep each run fast
					size = int(arg & 31)
				}
			}
			line := make([]byte, size)
			for j := range line {
				counter++
				line[j] = 'a' + counter%26
			}
			e := &logentry.LogEntry{Source: src, TimeNano: int64(i), Line: line}
			switch (op >> 2) & 3 {
			case 0: // complete line
			case 1: // old-style partial
				e.Partial = true
			default: // chunk with metadata
				e.Partial = op&0x80 == 0
				e.PartialLogMetadata = &logentry.PartialLogEntryMetadata{
					Id:      string('A' + rune((op>>4)&1)),
					Ordinal: int32(arg & 3),
					Last:    (op>>5)&1 == 1,
				}
			}
			want[src] = append(want[src], line...)
			if !(e.Partial || e.PartialLogMetadata != nil) || (e.PartialLogMetadata != nil && e.PartialLogMetadata.Last) {
				want[src] = append(want[src], '\n')
			}
			if err := a.Add(e, emit); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Flush(emit); err != nil {
			t.Fatal(err)
		}
		for _, s := range sources {
			if !bytes.Equal(got[s], want[s]) {
				t.Fatalf("%s: got %d bytes, want %d bytes", s, len(got[s]), len(want[s]))
			}
		}
	})
}

func BenchmarkAssembler(b *testing.B) {
	emit := func(*Record) error { return nil }
	b.Run("lines", func(b *testing.B) {
		a := NewAssembler()
		e := full("stdout", 1, strings.Repeat("x", 100))
		b.SetBytes(int64(len(e.Line)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := a.Add(e, emit); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chain64KiB", func(b *testing.B) {
		a := NewAssembler()
		chunk := strings.Repeat("c", 16*1024)
		es := []*logentry.LogEntry{
			part("stdout", 1, chunk, "A", 1, false), part("stdout", 1, chunk, "A", 2, false),
			part("stdout", 1, chunk, "A", 3, false), part("stdout", 1, chunk, "A", 4, true),
		}
		b.SetBytes(4 * 16 * 1024)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, e := range es {
				if err := a.Add(e, emit); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestAssemblerEmitPending: pieces written out early and the rest of the
// chain concatenate to the line; the chain keeps its metadata, so the last
// piece ends it with a newline; Pending follows the chain.
func TestAssemblerEmitPending(t *testing.T) {
	var got []rec
	emit := func(r *Record) error {
		got = append(got, rec{string(r.Line), r.Newline, r.Source, r.Time.UnixNano()})
		return nil
	}
	a := NewAssembler()
	if a.Pending() {
		t.Fatal("new Assembler pending")
	}
	steps := []*logentry.LogEntry{
		part("stdout", 7, "aa", "x", 1, false),
		part("stderr", 9, "e1", "y", 1, false),
		part("stdout", 7, "bb", "x", 2, false),
	}
	for _, e := range steps {
		if err := a.Add(e, emit); err != nil {
			t.Fatal(err)
		}
	}
	if !a.Pending() || len(got) != 0 {
		t.Fatalf("pending %v, records %v", a.Pending(), got)
	}
	if err := a.EmitPending(emit); err != nil {
		t.Fatal(err)
	}
	if err := a.EmitPending(emit); err != nil { // nothing new: no empty record
		t.Fatal(err)
	}
	if !a.Pending() {
		t.Fatal("EmitPending closed the chains")
	}
	for _, e := range []*logentry.LogEntry{part("stdout", 7, "cc", "x", 3, true), part("stderr", 9, "e2", "y", 2, true)} {
		if err := a.Add(e, emit); err != nil {
			t.Fatal(err)
		}
	}
	if a.Pending() {
		t.Fatal("chains still pending after their last pieces")
	}
	want := []rec{{"aabb", false, "stdout", 7}, {"e1", false, "stderr", 9}, {"cc", true, "stdout", 7}, {"e2", true, "stderr", 9}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// TestAssemblerShrink: after a long line, Shrink gives its buffer back;
// a pending line keeps its bytes.
func TestAssemblerShrink(t *testing.T) {
	a := NewAssembler()
	emit := func(*Record) error { return nil }
	long := strings.Repeat("x", 16<<10)
	for i := int32(1); i <= 10; i++ {
		if err := a.Add(part("stdout", 1, long, "big", i, i == 10), emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Add(part("stderr", 1, long, "held", 1, false), emit); err != nil {
		t.Fatal(err)
	}
	a.Shrink()
	for _, c := range a.chains {
		switch c.source {
		case "stdout":
			if cap(c.buf) != 0 {
				t.Errorf("idle source kept %d bytes of buffer", cap(c.buf))
			}
		case "stderr":
			if len(c.buf) != 16<<10 {
				t.Errorf("pending line lost its bytes: %d", len(c.buf))
			}
		}
	}
}
