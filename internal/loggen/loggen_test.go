package loggen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Spec
		wantErr bool
	}{
		{name: "defaults", args: nil, want: Spec{Mode: ModeLines, Lines: DefaultLines, Size: DefaultSize}},
		{name: "all", args: []string{"-mode", "bulk", "-lines", "5", "-size", "10", "-tag", "t", "-run", "3", "-rate", "2.5", "-duration", "1s", "-buffer", "4096", "-sleep", "-burst", "7", "-count-file", "/n", "-report", "/r"},
			want: Spec{Mode: ModeBulk, Lines: 5, Size: 10, Tag: "t", Run: 3, Rate: 2.5, Duration: time.Second, Buffer: 4096, Sleep: true, Burst: 7, CountFile: "/n", Report: "/r"}},
		{name: "seq", args: []string{"-mode", "seq"}, want: Spec{Mode: ModeSeq, Lines: DefaultLines, Size: DefaultSize}},
		{name: "json", args: []string{"-mode", "json"}, want: Spec{Mode: ModeJSON, Lines: DefaultLines, Size: DefaultSize}},
		{name: "unknown mode", args: []string{"-mode", "nope"}, wantErr: true},
		{name: "zero lines", args: []string{"-lines", "0"}, wantErr: true},
		{name: "zero size big", args: []string{"-mode", "big", "-size", "0"}, wantErr: true},
		{name: "huge size", args: []string{"-mode", "bulk", "-size", "999999999"}, wantErr: true},
		{name: "negative rate", args: []string{"-rate", "-1"}, wantErr: true},
		{name: "negative run", args: []string{"-run", "-1"}, wantErr: true},
		{name: "negative buffer", args: []string{"-buffer", "-1"}, wantErr: true},
		{name: "huge buffer", args: []string{"-buffer", "999999999"}, wantErr: true},
		{name: "burst without sleep", args: []string{"-burst", "5"}, wantErr: true},
		{name: "burst notrail", args: []string{"-mode", "notrail", "-sleep", "-burst", "5"}, wantErr: true},
		{name: "positional", args: []string{"extra"}, wantErr: true},
		{name: "bad flag", args: []string{"-nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFlags(tt.args)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseFlags(%q) = %+v, want error", tt.args, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseFlags(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestValidateSentinel(t *testing.T) {
	if err := (Spec{Mode: "x", Lines: 1}).Validate(); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("Validate() = %v, want ErrInvalidSpec", err)
	}
}

func TestArgsRoundTrip(t *testing.T) {
	specs := []Spec{
		{Mode: ModeLines, Lines: 7, Size: DefaultSize},
		{Mode: ModeBig, Lines: 2, Size: 100 << 10, Tag: "big", Run: 2, Rate: 10, Duration: 3 * time.Second, Sleep: true, CountFile: "/c", Report: "/r"},
		{Mode: ModeSeq, Lines: 9, Size: DefaultSize, Buffer: 32 << 10, Sleep: true, Burst: 100},
	}
	for _, s := range specs {
		got, err := ParseFlags(s.Args())
		if err != nil {
			t.Fatalf("ParseFlags(%q): %v", s.Args(), err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip of %+v gave %+v", s, got)
		}
	}
}

func TestModes(t *testing.T) {
	for _, m := range []Mode{ModeLines, ModeInterleave, ModeBig, ModeUTF8, ModeInvalidUTF8, ModeNoTrail, ModeBulk, ModeSeq, ModeJSON} {
		t.Run(string(m), func(t *testing.T) {
			s := Spec{Mode: m, Lines: 40, Size: 300, Tag: "tag"}
			out, errOut := Expected(s, s.Count())
			again, againErr := Expected(s, s.Count())
			if !bytes.Equal(out, again) || !bytes.Equal(errOut, againErr) {
				t.Fatal("Expected is not deterministic")
			}
			lines := 0
			for i := range s.Count() {
				w := s.Write(i)
				last := i == s.Count()-1
				if nl := bytes.Count(w.Data, []byte("\n")); nl != 1 && !(m == ModeNoTrail && last) {
					t.Fatalf("write %d has %d newlines: %q", i, nl, w.Data)
				}
				if !bytes.HasSuffix(w.Data, []byte("\n")) != (m == ModeNoTrail && last) {
					t.Fatalf("write %d newline ending wrong: %q", i, w.Data)
				}
				if (m == ModeBig || m == ModeBulk) && len(w.Data) != s.Size+1 {
					t.Fatalf("write %d has %d bytes, want %d", i, len(w.Data), s.Size+1)
				}
				if valid := utf8.Valid(w.Data); valid == (m == ModeInvalidUTF8) {
					t.Fatalf("write %d: utf8.Valid = %v in mode %s", i, valid, m)
				}
				lines++
			}
			if m == ModeInterleave {
				if len(errOut) == 0 || len(out) == 0 {
					t.Fatal("interleave must use both streams")
				}
			} else if len(errOut) != 0 {
				t.Fatalf("mode %s wrote to stderr", m)
			}
			if lines != s.Count() {
				t.Fatalf("%d lines, want %d", lines, s.Count())
			}
		})
	}
}

func TestTagAndRunChangeOutput(t *testing.T) {
	for _, m := range []Mode{ModeLines, ModeBulk, ModeBig, ModeUTF8} {
		a, _ := Expected(Spec{Mode: m, Lines: 3, Size: 64, Tag: "a"}, 3)
		b, _ := Expected(Spec{Mode: m, Lines: 3, Size: 64, Tag: "b"}, 3)
		r2, _ := Expected(Spec{Mode: m, Lines: 3, Size: 64, Tag: "a", Run: 2}, 3)
		r1, _ := Expected(Spec{Mode: m, Lines: 3, Size: 64, Tag: "a", Run: 1}, 3)
		if bytes.Equal(a, b) || bytes.Equal(a, r2) || !bytes.Equal(a, r1) {
			t.Fatalf("mode %s: tag/run handling wrong", m)
		}
	}
}

func TestExpectedPrefixClamp(t *testing.T) {
	s := Spec{Mode: ModeInterleave, Lines: 9}
	full, fullErr := Expected(s, 100)
	want, wantErr := Expected(s, 9)
	if !bytes.Equal(full, want) || !bytes.Equal(fullErr, wantErr) {
		t.Fatal("Expected does not clamp n to Count")
	}
	if o, e := Expected(s, -1); len(o)+len(e) != 0 {
		t.Fatal("Expected(-1) not empty")
	}
	p, _ := Expected(s, 4)
	if !bytes.HasPrefix(full, p) {
		t.Fatal("a shorter Expected is not a prefix")
	}
}

func TestWriteOutOfRangePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Spec{Mode: ModeLines, Lines: 1}.Write(1)
}

type recorder struct {
	stream Stream
	calls  *[]Write
}

func (r recorder) Write(p []byte) (int, error) {
	*r.calls = append(*r.calls, Write{r.stream, bytes.Clone(p)})
	return len(p), nil
}

func TestGenerateOneWritePerLine(t *testing.T) {
	s := Spec{Mode: ModeInterleave, Lines: 30, Tag: "g"}
	var calls []Write
	n, err := Generate(context.Background(), s, recorder{Stdout, &calls}, recorder{Stderr, &calls})
	if err != nil || n != s.Count() {
		t.Fatalf("Generate = %d, %v", n, err)
	}
	for i, c := range calls {
		if w := s.Write(i); w.Stream != c.Stream || !bytes.Equal(w.Data, c.Data) {
			t.Fatalf("call %d = %+v, want %+v", i, c, w)
		}
	}
	if len(calls) != s.Count() {
		t.Fatalf("%d calls, want %d", len(calls), s.Count())
	}
}

// stamped records when each write call happened.
type stamped struct {
	at   []time.Time
	data bytes.Buffer
}

func (s *stamped) Write(p []byte) (int, error) {
	s.at = append(s.at, time.Now())
	return s.data.Write(p)
}

// TestGenerateRateAndDuration: 100 lines/s for 0.3 s. A slow machine only
// delays lines, so the checks are bounds that hold however late the test
// runs: no line before its time, no more lines than the duration allows,
// and a stop long before the 1000 lines.
func TestGenerateRateAndDuration(t *testing.T) {
	s := Spec{Mode: ModeLines, Lines: 1000, Rate: 100, Duration: 300 * time.Millisecond}
	var out stamped
	start := time.Now()
	n, err := Generate(context.Background(), s, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 || n > 31 {
		t.Fatalf("wrote %d lines, want 1 to 31 (100 lines/s for 0.3 s)", n)
	}
	if want, _ := Expected(s, n); !bytes.Equal(out.data.Bytes(), want) {
		t.Fatal("output is not the expected prefix")
	}
	for i, at := range out.at {
		if due := start.Add(time.Duration(i) * 10 * time.Millisecond); at.Before(due) {
			t.Fatalf("line %d written %v before its time", i, due.Sub(at))
		}
	}
}

// TestGenerateBuffer: with Buffer at full speed every write call holds
// whole lines of one stream and at most Buffer bytes (or one longer line),
// and the streams get exactly Expected.
func TestGenerateBuffer(t *testing.T) {
	for _, s := range []Spec{
		{Mode: ModeSeq, Lines: 5000, Buffer: 64},
		{Mode: ModeInterleave, Lines: 300, Tag: "b", Buffer: 100},
		{Mode: ModeJSON, Lines: 50, Buffer: 512}, // every line is longer than Buffer
		{Mode: ModeNoTrail, Lines: 40, Buffer: 1 << 20},
	} {
		var calls []Write
		n, err := Generate(context.Background(), s, recorder{Stdout, &calls}, recorder{Stderr, &calls})
		if err != nil || n != s.Count() {
			t.Fatalf("%s: Generate = %d, %v", s.Mode, n, err)
		}
		var out, errOut []byte
		for _, c := range calls {
			lines := bytes.Count(c.Data, []byte("\n"))
			if len(c.Data) > s.Buffer && lines > 1 {
				t.Fatalf("%s: a write of %d bytes and %d lines, buffer %d", s.Mode, len(c.Data), lines, s.Buffer)
			}
			if !bytes.HasSuffix(c.Data, []byte("\n")) && s.Mode != ModeNoTrail {
				t.Fatalf("%s: a write ends inside a line: %q", s.Mode, c.Data)
			}
			if c.Stream == Stderr {
				errOut = append(errOut, c.Data...)
			} else {
				out = append(out, c.Data...)
			}
		}
		wantOut, wantErr := Expected(s, s.Count())
		if !bytes.Equal(out, wantOut) || !bytes.Equal(errOut, wantErr) {
			t.Fatalf("%s: buffered output differs from Expected", s.Mode)
		}
		if s.Mode == ModeSeq && len(calls) > len(wantOut)/32 {
			t.Errorf("%s: %d write calls for %d bytes with a 64-byte buffer", s.Mode, len(calls), len(wantOut))
		}
	}
}

// TestSeq: ModeSeq is `seq 1 N`, whatever Tag and Run say.
func TestSeq(t *testing.T) {
	out, _ := Expected(Spec{Mode: ModeSeq, Lines: 12, Tag: "ignored", Run: 3}, 12)
	if string(out) != "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n" {
		t.Fatalf("seq output %q", out)
	}
	if _, b := (Spec{Mode: ModeSeq, Lines: 2_000_000}).Append([]byte("x"), 1_999_999); string(b) != "x2000000\n" {
		t.Fatalf("Append = %q", b)
	}
}

// TestAppendNoAllocs: the benchmark modes append without allocating.
func TestAppendNoAllocs(t *testing.T) {
	for _, m := range []Mode{ModeSeq, ModeJSON} {
		s := Spec{Mode: m, Lines: 1000}
		buf := make([]byte, 0, 4096)
		i := 0
		if a := testing.AllocsPerRun(100, func() { _, buf = s.Append(buf[:0], i); i++ }); a != 0 {
			t.Errorf("%s: %v allocations per line", m, a)
		}
	}
}

func TestGenerateCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := Generate(ctx, Spec{Mode: ModeLines, Lines: 5}, io.Discard, io.Discard)
	if err != nil || n != 0 {
		t.Fatalf("Generate on cancelled ctx = %d, %v", n, err)
	}
}

type failWriter struct{}

var errBoom = errors.New("boom")

func (failWriter) Write([]byte) (int, error) { return 0, errBoom }

func TestGenerateWriteError(t *testing.T) {
	_, err := Generate(context.Background(), Spec{Mode: ModeLines, Lines: 5}, failWriter{}, io.Discard)
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want errBoom", err)
	}
}

func TestTortureCoverage(t *testing.T) {
	all := strings.Join(TortureLines, "\n")
	for _, want := range []string{`"`, `\`, "\t", "\r", "\x1b[", "😀", "<", ">", "&", "\x00", "\u2028"} {
		if !strings.Contains(all, want) {
			t.Errorf("TortureLines lack %q", want)
		}
	}
}
