package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var testTime = time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.UTC)

const testTimeJSON = `"time":"2026-11-27T15:04:05.123456789Z"}` + "\n"

func TestAppendJSON(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name    string
		line    string
		newline bool
		source  string
		attrs   string
		time    time.Time
		want    string
	}{
		{"plain", "hello", true, "stdout", "", testTime,
			`{"log":"hello\n","stream":"stdout",` + testTimeJSON},
		{"stderr without newline", "hello", false, "stderr", "", testTime,
			`{"log":"hello","stream":"stderr",` + testTimeJSON},
		{"attrs", "hello", true, "stdout", `{"a":"b"}`, testTime,
			`{"log":"hello\n","stream":"stdout","attrs":{"a":"b"},` + testTimeJSON},
		{"empty line", "", true, "stdout", "", testTime,
			`{"log":"\n","stream":"stdout",` + testTimeJSON},
		{"empty record omits log", "", false, "stdout", "", testTime,
			`{"stream":"stdout",` + testTimeJSON},
		{"no stream", "x", true, "", "", testTime,
			`{"log":"x\n",` + testTimeJSON},
		{"only attrs", "", false, "", `{"k":"v"}`, testTime,
			`{"attrs":{"k":"v"},` + testTimeJSON},
		{"nothing", "", false, "", "", testTime, `{` + testTimeJSON},
		{"quotes and backslashes", `say "hi" C:\dir\`, true, "stdout", "", testTime,
			`{"log":"say \"hi\" C:\\dir\\\n","stream":"stdout",` + testTimeJSON},
		{"tab, CR, LF", "a\tb\rc\nd", false, "stdout", "", testTime,
			`{"log":"a\u0009b\rc\nd","stream":"stdout",` + testTimeJSON},
		{"ANSI colours", "\x1b[31mred\x1b[0m", true, "stdout", "", testTime,
			`{"log":"\u001b[31mred\u001b[0m\n","stream":"stdout",` + testTimeJSON},
		{"html", "<a href=\"x\">&amp;</a>", false, "stdout", "", testTime,
			`{"log":"\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e","stream":"stdout",` + testTimeJSON},
		{"utf-8 and emoji", "héllo 世界 😀", false, "stdout", "", testTime,
			`{"log":"héllo 世界 😀","stream":"stdout",` + testTimeJSON},
		{"invalid utf-8", "a\xffb\xfe", false, "stdout", "", testTime,
			`{"log":"a\ufffdb\ufffd","stream":"stdout",` + testTimeJSON},
		{"truncated sequence before newline", "\xe2\x82", true, "stdout", "", testTime,
			`{"log":"\ufffd\ufffd\n","stream":"stdout",` + testTimeJSON},
		{"encoded surrogate", "\xed\xa0\x80", false, "stdout", "", testTime,
			`{"log":"\ufffd\ufffd\ufffd","stream":"stdout",` + testTimeJSON},
		{"literal U+FFFD kept", "\xef\xbf\xbd", false, "stdout", "", testTime,
			`{"log":"` + "\xef\xbf\xbd" + `","stream":"stdout",` + testTimeJSON},
		{"line and paragraph separators", "a\u2028b\u2029c", false, "stdout", "", testTime,
			`{"log":"a\u2028b\u2029c","stream":"stdout",` + testTimeJSON},
		{"DEL verbatim", "\x7f", false, "stdout", "", testTime,
			`{"log":"` + "\x7f" + `","stream":"stdout",` + testTimeJSON},
		{"odd stream escaped", "x", false, "we\"ird<\xff\u2028>", "", testTime,
			`{"log":"x","stream":"we\"ird\u003c\ufffd\u2028\u003e",` + testTimeJSON},
		{"time trailing zeros dropped", "x", false, "stdout", "", time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC),
			`{"log":"x","stream":"stdout","time":"2026-01-02T03:04:05.12Z"}` + "\n"},
		{"time whole second", "x", false, "stdout", "", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			`{"log":"x","stream":"stdout","time":"2026-01-02T03:04:05Z"}` + "\n"},
		{"time converted to UTC", "x", false, "stdout", "", time.Date(2026, 1, 2, 0, 30, 0, 1, berlin),
			`{"log":"x","stream":"stdout","time":"2026-01-01T23:30:00.000000001Z"}` + "\n"},
		{"time from unix nanos", "x", false, "stdout", "", time.Unix(0, 1764256445123456789),
			`{"log":"x","stream":"stdout","time":"2025-11-27T15:14:05.123456789Z"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Line: []byte(tt.line), Newline: tt.newline, Source: tt.source, Time: tt.time}
			prefix := []byte("prefix")
			got := AppendJSON(prefix, r, []byte(tt.attrs))
			if string(got[:6]) != "prefix" {
				t.Fatalf("dst prefix overwritten: %q", got)
			}
			if string(got[6:]) != tt.want {
				t.Fatalf("got  %s\nwant %s", got[6:], tt.want)
			}
			checkDecodes(t, r, tt.attrs, got[6:])
		})
	}
}

func TestAppendJSONControlChars(t *testing.T) {
	for b := 0; b < 0x20; b++ {
		want := fmt.Sprintf(`\u%04x`, b)
		switch b {
		case '\n':
			want = `\n`
		case '\r':
			want = `\r`
		}
		r := &Record{Line: []byte{'[', byte(b), ']'}, Source: "stdout", Time: testTime}
		got := string(AppendJSON(nil, r, nil))
		if exp := `{"log":"[` + want + `]","stream":"stdout",` + testTimeJSON; got != exp {
			t.Errorf("byte %#x: got %s want %s", b, got, exp)
		}
		checkDecodes(t, r, "", []byte(got))
	}
	// Every other byte below 0x80 except " \ < > & is verbatim.
	for b := 0x20; b < 0x80; b++ {
		r := &Record{Line: []byte{byte(b)}, Time: testTime}
		got := string(AppendJSON(nil, r, nil))
		verbatim := got == `{"log":"`+string(rune(b))+`",`+testTimeJSON
		if verbatim == strings.ContainsRune(`"\<>&`, rune(b)) {
			t.Errorf("byte %#x: got %s", b, got)
		}
	}
}

// checkDecodes decodes out with encoding/json and compares it with r.
func checkDecodes(t *testing.T, r *Record, attrs string, out []byte) {
	t.Helper()
	if out[len(out)-1] != '\n' || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("output is not exactly one line: %q", out)
	}
	var v struct {
		Log    *string           `json:"log"`
		Stream string            `json:"stream"`
		Attrs  map[string]string `json:"attrs"`
		Time   time.Time         `json:"time"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("encoding/json cannot decode %s: %v", out, err)
	}
	want := sanitize(r.Line)
	if r.Newline {
		want += "\n"
	}
	got := ""
	if v.Log != nil {
		got = *v.Log
	}
	if got != want {
		t.Errorf("log decodes to %q, want %q", got, want)
	}
	if v.Stream != sanitize([]byte(r.Source)) {
		t.Errorf("stream decodes to %q, want %q", v.Stream, r.Source)
	}
	if !v.Time.Equal(r.Time) {
		t.Errorf("time decodes to %v, want %v", v.Time, r.Time)
	}
	if attrs != "" {
		var m map[string]string
		if err := json.Unmarshal([]byte(attrs), &m); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(m) != fmt.Sprint(v.Attrs) {
			t.Errorf("attrs decode to %v, want %v", v.Attrs, m)
		}
	}
}

// sanitize replaces each byte of invalid UTF-8 by U+FFFD, as the encoder does.
func sanitize(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		sb.WriteRune(r) // RuneError for an invalid byte
		b = b[size:]
	}
	return sb.String()
}

func TestMarshalAttrs(t *testing.T) {
	for _, m := range []map[string]string{nil, {}} {
		got, err := MarshalAttrs(m)
		if err != nil || got != nil {
			t.Fatalf("MarshalAttrs(%v) = %q, %v; want nil, nil", m, got, err)
		}
	}
	got, err := MarshalAttrs(map[string]string{"tag": "web<1>", "com.example.team": "a&b", "env": "x\"y"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"com.example.team":"a\u0026b","env":"x\"y","tag":"web\u003c1\u003e"}`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	r := &Record{Line: []byte("GET /index.html 200 <ok> \"x\" \xff \u2028"), Newline: true, Source: "stdout", Time: testTime}
	attrs := []byte(`{"tag":"web"}`)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = AppendJSON(buf[:0], r, attrs)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per AppendJSON, want 0", allocs)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	lines := map[string][]byte{
		"short":   []byte("2026-11-27 15:04:05 INFO request served path=/index.html status=200 took=3ms"),
		"1KiB":    []byte(strings.Repeat("lorem ipsum dolor sit amet, ", 37)[:1024]),
		"1KiBesc": []byte(strings.Repeat("a\t\"b\" <c> \x1b[0m ", 70)[:1024]),
		// A JSON application log line, as the end-to-end benchmark logs.
		"1KiBjson": []byte(strings.Repeat(`{"ts":"2026-11-30T12:00:00.123Z","level":"info","msg":"request served","path":"/api/v1/items/42","status":200,"took_ms":3.2,"user":"u-1234"},`, 8)[:1024]),
	}
	for _, name := range []string{"short", "1KiB", "1KiBesc", "1KiBjson"} {
		b.Run(name, func(b *testing.B) {
			r := &Record{Line: lines[name], Newline: true, Source: "stdout", Time: testTime}
			buf := make([]byte, 0, 8192)
			b.SetBytes(int64(len(r.Line)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = AppendJSON(buf[:0], r, nil)
			}
		})
	}
}

// appendEscapedRef is the byte-at-a-time escaper that appendEscaped
// replaced, kept as the reference its output must equal.
func appendEscapedRef(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// FuzzAppendEscaped: the 8-bytes-at-a-time escaper writes exactly what the
// byte-at-a-time reference writes, for any input and any prefix in dst,
// including runes cut by its 4 KiB chunks.
func FuzzAppendEscaped(f *testing.F) {
	f.Add([]byte(`{"a":"b<c>&d\"e\\f"}`), 0)
	f.Add([]byte("plain text with no escapes at all, long enough for blocks"), 3)
	f.Add([]byte("\xff\xfe\u2028\u2029\x00\x1f\t\r\n\u00e9\U0001F600"), 1)
	for _, at := range []int{escapeChunk - 3, escapeChunk - 2, escapeChunk - 1, escapeChunk} {
		b := bytes.Repeat([]byte("x"), at)
		f.Add(append(b, "\U0001F600\u2028\xe2\x82"...), 0)
	}
	f.Fuzz(func(t *testing.T, s []byte, prefix int) {
		pre := bytes.Repeat([]byte("p"), prefix&63)
		got := appendEscaped(bytes.Clone(pre), s)
		want := appendEscapedRef(bytes.Clone(pre), s)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendEscaped(%q)\n got %q\nwant %q", s, got, want)
		}
	})
}

// TestAppendEscapedLong: lines of every length around the chunk size, with
// a multi-byte rune, an invalid byte and escapes at every position near
// the chunk boundary.
func TestAppendEscapedLong(t *testing.T) {
	for _, tail := range []string{"\U0001F600", "\u2028", "\xe2\x82", "\"", "<", "\x01"} {
		for n := escapeChunk - 12; n <= escapeChunk+12; n++ {
			s := append(bytes.Repeat([]byte("a\"b"), n/3), tail...)
			s = append(s, bytes.Repeat([]byte("z"), 20)...)
			if got, want := appendEscaped(nil, s), appendEscapedRef(nil, s); !bytes.Equal(got, want) {
				t.Fatalf("length %d, tail %q: output differs from the reference", n, tail)
			}
		}
	}
}
