package record

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// TestParseJSONRoundTrip checks that ParseJSON gives back what AppendJSON
// stored, for lines json-file escapes in every way.
func TestParseJSONRoundTrip(t *testing.T) {
	attrs, _ := MarshalAttrs(map[string]string{"a": `x"}{\`, "b": "é"})
	lines := []string{"", "hello", `quote " and \ backslash`, "tab\tcr\r", "<html>&amp;", "ctl \x00\x01\x1f\x7f", "é ü 日本 🎉", "bad \xff\xfe utf8", "sep \u2028\u2029", "/slash/"}
	times := []time.Time{time.Date(2026, 11, 30, 15, 4, 5, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC), time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Unix(0, 1).UTC()}
	var scratch []byte
	for _, l := range lines {
		for _, nl := range []bool{false, true} {
			for _, src := range []string{"stdout", "stderr"} {
				for _, at := range [][]byte{nil, attrs} {
					for _, tm := range times {
						r := Record{Line: []byte(l), Newline: nl, Source: src, Time: tm}
						enc := AppendJSON(nil, &r, at)
						var s Stored
						var err error
						s, scratch, err = ParseJSON(enc, scratch)
						if err != nil {
							t.Fatalf("%s: %v", enc, err)
						}
						// What json-file's docker logs prints: the decoded string.
						var ref struct{ Log string }
						if err := json.Unmarshal(enc, &ref); err != nil {
							t.Fatal(err)
						}
						if string(s.Log) != ref.Log || s.Source != src || !s.Time.Equal(tm) {
							t.Errorf("%s: got %q %s %v", enc, s.Log, s.Source, s.Time)
						}
						if !utf8.Valid(s.Log) {
							t.Errorf("%s: invalid UTF-8 out", enc)
						}
					}
				}
			}
		}
	}
}

func TestParseJSONOtherForms(t *testing.T) {
	tests := []struct {
		in      string
		log     string
		src     string
		wantErr bool
	}{
		{`{"time":"2026-11-30T10:00:00.5+01:00","stream":"stdout","log":"x\n"}`, "x\n", "stdout", false},
		{`{"log":"a\ud83c\udf89b","stream":"stderr","time":"2026-11-30T10:00:00Z","extra":1}`, "a🎉b", "stderr", false},
		{`{"log":"lone \ud83c","stream":"stdout","time":"2026-11-30T10:00:00Z"}`, "lone \ufffd", "stdout", false},
		{`{"stream":"stdout","time":"2026-11-30T10:00:00Z"}`, "", "stdout", false},
		{`not json`, "", "", true},
		{`{"log":"x","stream":"stdout","time":"yesterday"}`, "", "", true},
		{`{"log":"x","stream":"stdout","time":"2026-02-30T10:00:00Z"}`, "", "", true},
	}
	for _, tt := range tests {
		s, _, err := ParseJSON([]byte(tt.in), nil)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v", tt.in, err)
			continue
		}
		if !tt.wantErr && (string(s.Log) != tt.log || s.Source != tt.src) {
			t.Errorf("%s: %q %q", tt.in, s.Log, s.Source)
		}
	}
	s, _, _ := ParseJSON([]byte(`{"time":"2026-11-30T10:00:00.5+01:00","stream":"stdout","log":"x"}`), nil)
	if !s.Time.Equal(time.Date(2026, 11, 30, 9, 0, 0, 5e8, time.UTC)) {
		t.Errorf("offset time: %v", s.Time)
	}
}

// TestParseJSONNoAlloc checks the fast path does not allocate.
func TestParseJSONNoAlloc(t *testing.T) {
	r := Record{Line: []byte(`plain line with "quotes"`), Newline: true, Source: "stdout", Time: time.Now()}
	enc := AppendJSON(nil, &r, nil)
	scratch := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { _, scratch, _ = ParseJSON(enc, scratch) }); n != 0 {
		t.Errorf("%v allocations per record", n)
	}
}

// FuzzParseJSON checks that ParseJSON never panics, and that whatever the
// fast path accepts, encoding/json reads the same way.
func FuzzParseJSON(f *testing.F) {
	r := Record{Line: []byte("seed \"line\" é \xff"), Newline: true, Source: "stderr", Time: time.Date(2026, 11, 30, 1, 2, 3, 4, time.UTC)}
	f.Add(AppendJSON(nil, &r, nil))
	f.Add([]byte(`{"log":"a\u00e9\ud83c\udf89","stream":"stdout","attrs":{"k":"v}"},"time":"2026-11-30T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _, ok := parseFast(bytes.TrimSuffix(b, []byte{'\n'}), nil)
		if !ok {
			_, _, _ = ParseJSON(b, nil)
			return
		}
		var ref struct {
			Log    string
			Stream string
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			return // the fast path is lenient about what follows the members it reads
		}
		if string(s.Log) != ref.Log || s.Source != ref.Stream {
			t.Errorf("%q: fast %q %q, encoding/json %q %q", b, s.Log, s.Source, ref.Log, ref.Stream)
		}
	})
}

func BenchmarkParseJSON(b *testing.B) {
	r := Record{Line: bytes.Repeat([]byte("x"), 100), Newline: true, Source: "stdout", Time: time.Now()}
	enc := AppendJSON(nil, &r, nil)
	var scratch []byte
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		_, scratch, _ = ParseJSON(enc, scratch)
	}
}
