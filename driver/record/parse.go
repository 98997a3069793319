package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Stored is one record read back from a segment: what AppendJSON wrote.
type Stored struct {
	// Log is the "log" text unescaped: the line, with its '\n' when the
	// container wrote one. It aliases the parsed line or the scratch
	// buffer given to ParseJSON.
	Log []byte
	// Source is the "stream" value: "stdout" or "stderr" for Docker's
	// streams.
	Source string
	// Time is the record's timestamp (UTC).
	Time time.Time
}

// ErrBadRecord is wrapped by every error ParseJSON returns.
var ErrBadRecord = errors.New("record: not a json-file record")

// ParseJSON parses one record line (with or without its trailing '\n')
// as AppendJSON writes it: a fast path reads that exact layout without
// allocating, and any other JSON object with "log", "stream" and "time"
// (json-file's form, keys in any order, extra keys) goes through
// encoding/json. Unescaped text goes to scratch, which ParseJSON grows as
// needed and returns for reuse. It is safe for concurrent use on distinct
// arguments.
func ParseJSON(line, scratch []byte) (Stored, []byte, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if s, scratch, ok := parseFast(line, scratch); ok {
		return s, scratch, nil
	}
	var v struct {
		Log    *string `json:"log"`
		Stream string  `json:"stream"`
		Time   string  `json:"time"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return Stored{}, scratch, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	t, err := time.Parse(time.RFC3339Nano, v.Time)
	if err != nil {
		return Stored{}, scratch, fmt.Errorf("%w: time %q: %w", ErrBadRecord, v.Time, err)
	}
	s := Stored{Source: source(v.Stream), Time: t.UTC()}
	if v.Log != nil {
		s.Log = append(scratch[:0], *v.Log...)
		scratch = s.Log
	}
	return s, scratch, nil
}

// source returns the stream name, without allocating for Docker's two.
func source(s string) string {
	switch s {
	case "stdout":
		return "stdout"
	case "stderr":
		return "stderr"
	}
	return s
}

// parseFast reads {"log":"...","stream":"stdout|stderr"[,"attrs":{...}],"time":"..."}
// (the "log" member is absent for an empty record without newline).
func parseFast(b, scratch []byte) (Stored, []byte, bool) {
	var s Stored
	if !bytes.HasPrefix(b, []byte(`{`)) {
		return s, scratch, false
	}
	b = b[1:]
	if rest, ok := bytes.CutPrefix(b, []byte(`"log":"`)); ok {
		var end int
		var ok bool
		s.Log, scratch, end, ok = unescape(rest, scratch)
		if !ok {
			return s, scratch, false
		}
		b = rest[end+1:]
		if len(b) == 0 || b[0] != ',' {
			return s, scratch, false
		}
		b = b[1:]
	}
	switch {
	case bytes.HasPrefix(b, []byte(`"stream":"stdout",`)):
		s.Source = "stdout"
		b = b[len(`"stream":"stdout",`):]
	case bytes.HasPrefix(b, []byte(`"stream":"stderr",`)):
		s.Source = "stderr"
		b = b[len(`"stream":"stderr",`):]
	default:
		return s, scratch, false
	}
	if rest, ok := bytes.CutPrefix(b, []byte(`"attrs":`)); ok {
		n := skipObject(rest)
		if n <= 0 || n >= len(rest) || rest[n] != ',' {
			return s, scratch, false
		}
		b = rest[n+1:]
	}
	rest, ok := bytes.CutPrefix(b, []byte(`"time":"`))
	if !ok || !bytes.HasSuffix(rest, []byte(`"}`)) {
		return s, scratch, false
	}
	t, ok := parseTime(rest[:len(rest)-2])
	if !ok {
		return s, scratch, false
	}
	s.Time = t
	return s, scratch, true
}

// unescape reads a JSON string body from b up to its closing quote and
// returns the unescaped text (b itself when nothing is escaped), the
// index of the closing quote in b, and whether the string was valid.
func unescape(b, scratch []byte) (out, scratchOut []byte, end int, ok bool) {
	q := bytes.IndexByte(b, '"')
	if q < 0 {
		return nil, scratch, 0, false
	}
	i := bytes.IndexByte(b[:q], '\\')
	if i < 0 {
		return b[:q], scratch, q, true
	}
	out = append(scratch[:0], b[:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return out, out, i, true
		case c < 0x20:
			return nil, out, 0, false
		case c != '\\':
			j := i + 1
			for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
				j++
			}
			out = append(out, b[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(b) {
			return nil, out, 0, false
		}
		switch b[i+1] {
		case '"', '\\', '/':
			out = append(out, b[i+1])
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'u':
			r, ok := hex4(b[i+2:])
			if !ok {
				return nil, out, 0, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2, ok2 = hex4(b[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, out, 0, false
		}
		i += 2
	}
	return nil, out, 0, false
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipObject returns the length of the JSON object at the start of b (as
// encoding/json writes a map[string]string: strings only), or 0.
func skipObject(b []byte) int {
	if len(b) == 0 || b[0] != '{' {
		return 0
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return 0
			}
		}
	}
	return 0
}

// parseTime reads the UTC RFC 3339 form AppendJSON writes,
// 2006-01-02T15:04:05[.fraction]Z, falling back to time.Parse.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) >= 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[len(b)-1] == 'Z' {
		y, ok1 := digits(b[0:4])
		mo, ok2 := digits(b[5:7])
		d, ok3 := digits(b[8:10])
		h, ok4 := digits(b[11:13])
		mi, ok5 := digits(b[14:16])
		sec, ok6 := digits(b[17:19])
		frac := b[19 : len(b)-1]
		ns, okf := 0, true
		if len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
				okf = false
			} else {
				ns, okf = digits(frac[1:])
				for k := len(frac) - 1; k < 9; k++ {
					ns *= 10
				}
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && okf && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && sec < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
			if t.Day() == d {
				return t, true
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// digits parses a run of ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}
