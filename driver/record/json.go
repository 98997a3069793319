package record

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// AppendJSON appends r as one Docker json-file line, including the final
// '\n', to dst and returns the extended slice. attrs is the JSON object from
// MarshalAttrs (nil or empty for none). The output is byte-identical to what
// Docker's json-file driver writes for the same line (see the package
// documentation). It allocates only when dst must grow. r.Time must lie in
// years 0 to 9999, which every time from a LogEntry's TimeNano does.
func AppendJSON(dst []byte, r *Record, attrs []byte) []byte {
	dst = append(dst, '{')
	first := true
	if len(r.Line) != 0 || r.Newline {
		first = false
		dst = append(dst, `"log":"`...)
		dst = appendEscaped(dst, r.Line)
		if r.Newline {
			dst = append(dst, `\n`...)
		}
		dst = append(dst, '"')
	}
	if r.Source != "" {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `"stream":"`...)
		switch r.Source {
		case "stdout", "stderr":
			dst = append(dst, r.Source...)
		default:
			dst = appendEscapedString(dst, r.Source)
		}
		dst = append(dst, '"')
	}
	if len(attrs) > 0 {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `"attrs":`...)
		dst = append(dst, attrs...)
	}
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, `"time":"`...)
	dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}

// MarshalAttrs encodes the attributes of a stream (labels, env, tag) as the
// JSON object json-file stores in "attrs": encoding/json's encoding of the
// map, keys sorted. It returns nil for an empty map. Call it once per stream.
func MarshalAttrs(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

const hexDigits = "0123456789abcdef"

// plain[b] is true for ASCII bytes copied verbatim.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range []byte{'"', '\\', '<', '>', '&'} {
		t[b] = false
	}
	return t
}()

// appendASCIIEscape appends the escape of an ASCII byte that is not plain.
func appendASCIIEscape(dst []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(dst, '\\', b)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
}

// appendEscaped appends s escaped as json-file escapes the log field,
// without quotes.
func appendEscaped(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendASCIIEscape(dst, b)
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

// appendEscapedString is appendEscaped for a string. The conversion does
// not allocate for short strings such as the stream names, since
// appendEscaped does not keep its argument.
func appendEscapedString(dst []byte, s string) []byte {
	return appendEscaped(dst, []byte(s))
}
