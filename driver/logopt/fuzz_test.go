package logopt

import (
	"strconv"
	"strings"
	"testing"
	"unicode"
)

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "64k", "64KiB", "1.5g", "32 mb", "32 ", "10XB", "1.2.3", "-1",
		"8191p", "9223372036854775807", "0.0000001k", ".5", "5g", "5121m", "1e3", "１k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		ref, refOK := refRAMInBytes(s)
		if (err == nil) != refOK || (refOK && n != ref) {
			t.Fatalf("parseSize(%q) = %d, %v; reference = %d, %v", s, n, err, ref, refOK)
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("parseSize(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		// Units are case-insensitive.
		swapped := strings.Map(func(r rune) rune {
			if unicode.IsUpper(r) {
				return unicode.ToLower(r)
			}
			return unicode.ToUpper(r)
		}, s)
		if m, err := parseSize(swapped); err != nil || m != n {
			t.Fatalf("parseSize(%q) = %d, %v; parseSize(%q) = %d", swapped, m, err, s, n)
		}
		// Plain bytes round-trip.
		plain := strconv.FormatInt(n, 10)
		if m, err := parseSize(plain); err != nil || (m != n && n < 1<<53) {
			t.Fatalf("parseSize(%q) = %d, %v; want %d", plain, m, err, n)
		}
		// Validation never accepts what the bounds refuse.
		_, perr := Parse(map[string]string{OptBucket: "logs", OptSegmentSize: s})
		inBounds := n >= MinSegmentSize && n <= MaxSegmentSize
		if (perr == nil) != inBounds {
			t.Fatalf("Parse(segment-size=%q) = %v; size %d, in bounds %v", s, perr, n, inBounds)
		}
	})
}
