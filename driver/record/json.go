package record

import (
	"encoding/binary"
	"encoding/json"
	"slices"
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

// class[b] sorts the bytes for appendEscaped: 0 copied verbatim, 1 an
// ASCII byte that is escaped, 2 a byte of a UTF-8 sequence (or an invalid
// byte).
var class = func() (t [256]uint8) {
	for b := range t {
		switch {
		case b >= utf8.RuneSelf:
			t[b] = 2
		case !plain[b]:
			t[b] = 1
		}
	}
	return t
}()

// lead[b] is the first byte out for a verbatim byte (b itself) and for the
// quote and the backslash (a backslash).
var lead = func() (t [256]byte) {
	for b := range t {
		t[b] = byte(b)
	}
	t['"'], t['\\'] = '\\', '\\'
	return t
}()

// escapeChunk is how much input appendEscaped escapes per growth of dst:
// dst grows by the worst case (6 bytes per input byte) of one chunk at a
// time, so a long line never reserves six times its size.
const escapeChunk = 4096

// appendEscaped appends s escaped as json-file escapes the log field,
// without quotes.
func appendEscaped(dst, s []byte) []byte {
	for len(s) > 0 {
		k := min(len(s), escapeChunk)
		dst = slices.Grow(dst, 6*(k+utf8.UTFMax))
		var used int
		dst, used = escapeInto(dst, s, k)
		s = s[used:]
	}
	return dst
}

// escapeInto escapes s[:k], and the rest of a UTF-8 sequence that starts
// before k, into the spare capacity of dst, which must hold 6 bytes per
// input byte. It returns dst extended and how many bytes of s it used.
// Eight verbatim bytes are checked and copied at a time.
func escapeInto(dst, s []byte, k int) ([]byte, int) {
	n := len(dst)
	d := dst[:cap(dst)]
	i := 0
	for i < k {
		if i+8 <= k {
			w := binary.LittleEndian.Uint64(s[i:])
			if class[byte(w)]|class[byte(w>>8)]|class[byte(w>>16)]|class[byte(w>>24)]|
				class[byte(w>>32)]|class[byte(w>>40)]|class[byte(w>>48)]|class[byte(w>>56)] == 0 {
				binary.LittleEndian.PutUint64(d[n:], w)
				n += 8
				i += 8
				continue
			}
		}
		// Byte by byte up to the next 8-byte boundary of the input.
		// Verbatim bytes and the quote and backslash, by far the most
		// common escapes in JSON logs, take no branch: the byte goes at
		// n+1 behind its lead (itself, or a backslash) and n moves by 1
		// or 2.
		for end := min(i+8, k); i < end; {
			b := s[i]
			if c := class[b]; c == 0 || b == '"' || b == '\\' {
				_ = d[n+1]
				d[n] = lead[b]
				d[n+1] = b
				n += 1 + int(c)
				i++
				continue
			}
			switch class[b] {
			case 1:
				n += putASCIIEscape(d[n:], b)
				i++
			default:
				r, size := utf8.DecodeRune(s[i:])
				switch {
				case r == utf8.RuneError && size == 1:
					n += copy(d[n:], `\ufffd`)
				case r == '\u2028' || r == '\u2029':
					n += copy(d[n:], `\u202`)
					d[n] = hexDigits[r&0xf]
					n++
				default:
					n += copy(d[n:], s[i:i+size])
				}
				i += size
			}
		}
	}
	return d[:n], i
}

// putASCIIEscape writes the escape of an ASCII byte that is not plain to
// d and returns its length.
func putASCIIEscape(d []byte, b byte) int {
	switch b {
	case '"', '\\':
		d[0], d[1] = '\\', b
		return 2
	case '\n':
		d[0], d[1] = '\\', 'n'
		return 2
	case '\r':
		d[0], d[1] = '\\', 'r'
		return 2
	}
	_ = d[5]
	d[0], d[1], d[2], d[3], d[4], d[5] = '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf]
	return 6
}

// appendEscapedString is appendEscaped for a string. The conversion does
// not allocate for short strings such as the stream names, since
// appendEscaped does not keep its argument.
func appendEscapedString(dst []byte, s string) []byte {
	return appendEscaped(dst, []byte(s))
}
