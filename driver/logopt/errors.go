package logopt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Every *Error wraps exactly one of them.
var (
	// ErrUnknownOption: the map holds an option s3logs does not know.
	ErrUnknownOption = errors.New("logopt: unknown option")
	// ErrInvalidValue: an option's value is malformed or out of range, or
	// conflicts with another option.
	ErrInvalidValue = errors.New("logopt: invalid value")
	// ErrMissingOption: a required option is absent or empty.
	ErrMissingOption = errors.New("logopt: missing option")
	// ErrNotAllowed: a valid option value that the plugin's settings forbid
	// on this host (see EndpointPolicy).
	ErrNotAllowed = errors.New("logopt: not allowed by the plugin settings")
)

// Error describes one problem with one option. Its message is a single line
// meant for the user running `docker run`.
type Error struct {
	Option string // option name, e.g. "segment-size"
	// Value is the value as given, except: "" for a missing option and for
	// an unknown one (whose value may be a credential put in the wrong
	// place), and an endpoint with anything that may be a credential
	// (userinfo, query, fragment) replaced by "xxxxx".
	Value string
	Want  string // what is accepted; for an unknown option, the valid names
	// Err wraps ErrUnknownOption, ErrInvalidValue, ErrMissingOption or
	// ErrNotAllowed, and the cause if any.
	Err error
}

// maxQuoted bounds how much of a value an error message repeats.
const maxQuoted = 128

// Error returns the one-line message.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case errors.Is(e.Err, ErrUnknownOption):
		fmt.Fprintf(&b, "unknown log-opt %s for the s3logs driver: valid options are %s", quote(e.Option), e.Want)
	case errors.Is(e.Err, ErrMissingOption):
		fmt.Fprintf(&b, "log-opt %s is required: want %s", e.Option, e.Want)
	case errors.Is(e.Err, ErrNotAllowed):
		fmt.Fprintf(&b, "log-opt %s=%s is not allowed on this host: want %s", e.Option, quote(e.Value), e.Want)
	default:
		fmt.Fprintf(&b, "log-opt %s=%s is invalid: want %s", e.Option, quote(e.Value), e.Want)
	}
	if c := cause(e.Err); c != "" {
		b.WriteString(" (")
		b.WriteString(c)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns Err, so errors.Is finds the sentinel and the cause.
func (e *Error) Unwrap() error { return e.Err }

// cause returns the part of err's message beyond the sentinel, on one line.
func cause(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, s := range []error{ErrUnknownOption, ErrInvalidValue, ErrMissingOption, ErrNotAllowed} {
		if msg == s.Error() {
			return ""
		}
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	return strings.Join(strings.Fields(msg), " ")
}

// quote quotes s with Go syntax (so control characters stay visible and the
// message stays on one line), repeating at most maxQuoted bytes of it.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := maxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + fmt.Sprintf("... (%d bytes)", len(s))
}

func invalid(opt, val, want string, cause error) *Error {
	err := ErrInvalidValue
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrInvalidValue, cause)
	}
	return &Error{Option: opt, Value: val, Want: want, Err: err}
}
