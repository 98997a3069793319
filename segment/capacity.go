package segment

import (
	"errors"
	"fmt"
	"syscall"
)

// Policy says what happens when the spool is full.
type Policy string

const (
	// PolicyDropOldest deletes the oldest sealed segments, unuploaded, until
	// the spool is below its limit again; each drop is logged with the
	// container, key, bytes and records lost. Containers never block.
	PolicyDropOldest Policy = "drop-oldest"
	// PolicyBlock makes Append wait until uploads free space. Nothing is
	// dropped, but a container whose logs cannot be stored blocks on its
	// next write to stdout or stderr once Docker's pipe is full.
	PolicyBlock Policy = "block"
)

// ParsePolicy accepts "drop-oldest" and "block".
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case PolicyDropOldest, PolicyBlock:
		return p, nil
	}
	return "", fmt.Errorf("segment: spool policy %q: want drop-oldest or block", s)
}

// isNoSpace reports whether err means the disk is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
