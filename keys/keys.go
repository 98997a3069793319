package keys

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxKeyLen is the longest S3 object key in bytes.
const MaxKeyLen = 1024

// fileTimeLayout renders the first-record time in the file part: UTC with
// milliseconds, fixed width for years 0 to 9999, so names sort in time order.
const fileTimeLayout = "20060102T150405.000Z"

// FileSuffix ends every file part: the objects are zstd-compressed JSON lines.
const FileSuffix = ".jsonl.zst"

// FilePart returns the part of a key the user cannot change, for example
// "20261127T154405.123Z_3f2a9c1b7d4e_000042.jsonl.zst": the UTC time of the
// segment's first record in milliseconds, the first 12 characters of the
// container id (bytes other than ASCII letters and digits become "_"; an
// empty id becomes "_"), and seq zero-padded to at least 6 digits. For one
// prefix, names sort lexicographically in time order (years 0 to 9999);
// within one millisecond of one container they sort by seq while seq has at
// most 6 digits.
func FilePart(first time.Time, containerID string, seq uint64) string {
	var b strings.Builder
	b.Grow(len(fileTimeLayout) + 1 + 12 + 1 + 6 + len(FileSuffix))
	b.WriteString(first.UTC().Format(fileTimeLayout))
	b.WriteByte('_')
	id := containerID
	if len(id) > 12 {
		id = id[:12]
	}
	if id == "" {
		id = "_"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	s := strconv.FormatUint(seq, 10)
	for i := len(s); i < 6; i++ {
		b.WriteByte('0')
	}
	b.WriteString(s)
	b.WriteString(FileSuffix)
	return b.String()
}

// Key joins a rendered prefix and a file part into an object key. The prefix
// is concatenated as is (a prefix that should be a folder ends with "/"),
// both parts are sanitized (see the package documentation), and the key is
// bounded to MaxKeyLen bytes by shortening the prefix, never the file part
// and never inside a UTF-8 sequence. A prefix that was a folder stays one.
// A file part that sanitizes to nothing becomes "_"; one longer than
// MaxKeyLen (never the case for FilePart's output) keeps its last bytes.
// The result is valid UTF-8, does not start with "/", has no empty, "." or
// ".." elements, and ends with the sanitized file part.
func Key(prefix, filePart string) string {
	fp := sanitizeKey(filePart)
	if len(fp) > MaxKeyLen {
		start := len(fp) - MaxKeyLen
		for start < len(fp) && !utf8.RuneStart(fp[start]) {
			start++
		}
		fp = sanitizeKey(fp[start:])
	}
	if fp == "" {
		fp = "_"
	}
	return boundPrefix(sanitizePrefix(prefix), MaxKeyLen-len(fp)) + fp
}

// cleanChars replaces invalid UTF-8 bytes, C0 and C1 control characters,
// DEL, U+FFFE and U+FFFF with "_". The result is never longer than s.
func cleanChars(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if badRune(r, n) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if badRune(r, n) {
			b.WriteByte('_')
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func badRune(r rune, n int) bool {
	return (r == utf8.RuneError && n == 1) || r < 0x20 || (0x7f <= r && r <= 0x9f) ||
		r == 0xfffe || r == 0xffff
}

// fixDots replaces the path elements "." and ".." with "_" and "__".
func fixDots(e string) string {
	switch e {
	case ".":
		return "_"
	case "..":
		return "__"
	}
	return e
}

// sanitizeKey cleans s as a whole key: clean characters, no empty, "." or
// ".." elements (so no leading or trailing "/"). Never longer than s.
func sanitizeKey(s string) string {
	s = cleanChars(s)
	parts := strings.Split(s, "/")
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, fixDots(p))
		}
	}
	return strings.Join(out, "/")
}

// sanitizePrefix cleans s as a key prefix: like sanitizeKey, except that
// the text after the last "/" is the start of the file name and may be
// empty, so a trailing "/" is kept (unless nothing precedes it).
// Never longer than s.
func sanitizePrefix(s string) string {
	s = cleanChars(s)
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return fixDots(s)
	}
	dirs := sanitizeKey(s[:i])
	last := fixDots(s[i+1:])
	if dirs == "" {
		return last
	}
	return dirs + "/" + last
}

// boundPrefix shortens a sanitized prefix to at most max bytes, cutting on a
// rune boundary and keeping a trailing "/" if p had one.
func boundPrefix(p string, max int) string {
	if len(p) <= max {
		return p
	}
	if strings.HasSuffix(p, "/") {
		if max < 1 {
			return ""
		}
		return sanitizePrefix(cutUTF8(p, max-1) + "/")
	}
	return sanitizePrefix(cutUTF8(p, max))
}

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// end inside a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
