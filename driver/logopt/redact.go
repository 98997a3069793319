package logopt

import "strings"

// redactedText replaces what an error message must not repeat.
const redactedText = "xxxxx"

// redactEndpoint returns an endpoint value as error messages may show it,
// whether or not it parses as a URL. Anything that may carry a credential
// is replaced by "xxxxx":
//
//   - the userinfo: everything between "scheme://" (or the start, when
//     there is no valid scheme) and the last "@", so a password holding
//     "/", "?", "#" or ":" is covered too;
//   - the query and the fragment (presigned-URL signatures, tokens), from
//     the first "?" or "#" on;
//   - a "port" that is not a number and is longer than a port can be
//     ("http://AKIA:secret" with the "@host" forgotten).
//
// The scheme, host and path stay visible so the user can see what is wrong.
// It never fails and never shows more of val than val itself.
func redactEndpoint(val string) string {
	head, rest := "", val
	if i := strings.Index(val, "://"); i > 0 && validScheme(val[:i]) {
		head, rest = val[:i+3], val[i+3:]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = redactedText + rest[i:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i+1] + redactedText
	}
	// The host and port: up to the first "/", "?" or "#", after any "@".
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	start := strings.LastIndexByte(rest[:end], '@') + 1
	hostPort := rest[start:end]
	if c := strings.LastIndexByte(hostPort, ':'); c >= 0 && !strings.Contains(hostPort[c:], "]") {
		if port := hostPort[c+1:]; len(port) > 5 && !allDigits(port) {
			rest = rest[:start+c+1] + redactedText + rest[end:]
		}
	}
	return head + rest
}

// validScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, "+", "-" or ".").
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // ASCII lower case for letters
		switch {
		case 'a' <= c && c <= 'z':
		case i > 0 && (isDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'):
		default:
			return false
		}
	}
	return s != ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// hasUserinfo reports whether an endpoint value holds an "@", which in an
// endpoint can only be a userinfo separator (a host has none, and a path,
// query or fragment is refused anyway).
func hasUserinfo(val string) bool { return strings.IndexByte(val, '@') >= 0 }
