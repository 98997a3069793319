package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Sequence files.
const (
	// seqFile, in the spool root, holds the spool-wide sequence counter:
	// no number at or above its value has been handed out.
	seqFile = ".seq"
	// legacySeqFile is the per-container counter of earlier versions, kept
	// in each container folder. It is read once at Open, so that numbers
	// keep growing across the upgrade, and deleted with its folder.
	legacySeqFile = "seq"
)

// seqBlock is how many sequence numbers are reserved with one write of the
// counter file: a crash or restart skips at most this many, and the file is
// written and synced once per seqBlock segments rather than for each.
const seqBlock = 1024

// seqCounter hands out segment sequence numbers unique across the spool and
// its whole life, crashes and removed container folders included: a number
// is handed out only once the counter file says a higher one comes next.
// Numbers increase in the order they are handed out; after a restart they
// resume above everything reserved before, so they may skip.
//
// Uniqueness per spool (not per container) is what makes container folders
// disposable: a folder can be removed once its last segment is uploaded,
// and a new stream of the same container still gets numbers it never had,
// so keys.FilePart(first time, container, seq) cannot repeat even when two
// segments start in the same millisecond.
type seqCounter struct {
	path string // the counter file
	dir  string // the spool root, synced after the file is replaced

	// mu guards next and reserved.
	mu       sync.Mutex
	next     uint64 // the next number to hand out
	reserved uint64 // the counter file's value: numbers below it may be handed out
}

// open loads the counter of the spool root dir: the counter file's value,
// or floor (one past the highest number the spool's files show), whichever
// is higher, and at least 1. It reserves a first block at once, so that
// the counter file covers floor before anything derived from the spool's
// files (such as a legacy seq file) may be deleted.
func (c *seqCounter) open(dir string, floor uint64) error {
	c.dir = dir
	c.path = filepath.Join(dir, seqFile)
	next := max(floor, 1)
	b, err := os.ReadFile(c.path)
	switch {
	case err == nil:
		n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return fmt.Errorf("segment: %s: %w", c.path, perr)
		}
		next = max(next, n)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("segment: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = next
	return c.reserveLocked()
}

// alloc returns the next sequence number.
func (c *seqCounter) alloc() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next >= c.reserved {
		if err := c.reserveLocked(); err != nil {
			return 0, err
		}
	}
	seq := c.next
	c.next++
	return seq, nil
}

// reserveLocked persists next+seqBlock as the counter and syncs the root.
func (c *seqCounter) reserveLocked() error {
	r := c.next + seqBlock
	if err := writeFileAtomic(c.path, []byte(strconv.FormatUint(r, 10)+"\n")); err != nil {
		return err
	}
	if err := syncDir(c.dir); err != nil {
		return err
	}
	c.reserved = r
	return nil
}

// readLegacySeq returns the value of a container folder's legacy seq file,
// or 0 when there is none.
func readLegacySeq(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, legacySeqFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("segment: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("segment: %s: %w", filepath.Join(dir, legacySeqFile), err)
	}
	return n, nil
}

// fileName is the data file name of a sequence number: within a container
// folder, names sort in sequence order, which is creation order.
func fileName(seq uint64) string {
	return fmt.Sprintf("%012d", seq) + DataSuffix
}

// parseSeq extracts the sequence number from any file name of a segment.
func parseSeq(name string) (uint64, bool) {
	i := strings.Index(name, DataSuffix)
	if i <= 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(name[:i], 10, 64)
	return n, err == nil
}
