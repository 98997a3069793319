package logopt

import (
	"errors"
	"math"
	"strconv"
)

// Binary size units, as Docker's max-size and --memory use them.
const (
	kiB = 1 << 10
	miB = 1 << 20
	giB = 1 << 30
	tiB = 1 << 40
	piB = 1 << 50
)

var (
	errSizeSyntax = errors.New("logopt: not a size")
	errSizeRange  = errors.New("logopt: size out of range")
)

// parseSize parses a size the way Docker's RAMInBytes (github.com/docker/
// go-units) does, which is what Docker uses for max-buffer-size, --memory and
// friends: a decimal number (digits, optionally "." and more digits), an
// optional single space, an optional unit k, m, g, t or p (powers of 1024),
// an optional "i" and an optional "b", all case-insensitive: "512k", "64m",
// "1g", "1.5GiB", "65536", "64 KB", "10b". The product is truncated to whole
// bytes. Unlike RAMInBytes it refuses results of 2^63 bytes or more instead
// of overflowing.
func parseSize(s string) (int64, error) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return 0, errSizeSyntax
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i+1 {
			return 0, errSizeSyntax
		}
		i = j
	}
	num := s[:i]
	rest := s[i:]
	if rest != "" && rest[0] == ' ' {
		rest = rest[1:]
	}
	mul := int64(1)
	if rest != "" {
		switch rest[0] | 0x20 { // ASCII lower case
		case 'k':
			mul, rest = kiB, rest[1:]
		case 'm':
			mul, rest = miB, rest[1:]
		case 'g':
			mul, rest = giB, rest[1:]
		case 't':
			mul, rest = tiB, rest[1:]
		case 'p':
			mul, rest = piB, rest[1:]
		}
	}
	if rest != "" && rest[0]|0x20 == 'i' {
		rest = rest[1:]
	}
	if rest != "" && rest[0]|0x20 == 'b' {
		rest = rest[1:]
	}
	if rest != "" {
		return 0, errSizeSyntax
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errSizeRange // only ErrRange is possible for this syntax
	}
	f *= float64(mul)
	if f >= math.MaxInt64 {
		return 0, errSizeRange
	}
	return int64(f), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ParseSize parses a size in Docker's syntax (as the segment-size log-opt
// and Docker's max-size accept it): digits with an optional fraction and an
// optional k, m, g, t or p suffix (powers of 1024, case-insensitive, with an
// optional i and b). It is used for plugin settings such as SPOOL_LIMIT.
func ParseSize(s string) (int64, error) { return parseSize(s) }
