package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Stats is a snapshot of a Spool's state and of its counters since Open.
// The counters only grow; the other fields are gauges.
type Stats struct {
	// SealedBytes and SealedSegments are the sealed segments waiting for
	// upload (data files and sidecars): what Config.Limit caps.
	SealedBytes    int64
	SealedSegments int
	// OldestSealed is when the oldest of them was sealed (for a segment
	// an earlier process left, the time of its data file's last write,
	// at or before its seal); zero when there is none.
	OldestSealed time.Time
	// Limit is Config.Limit (0: no cap).
	Limit int64
	// FreeBytes is the free space of the spool's filesystem for
	// unprivileged use at the janitor's last visit (at most a flush
	// interval ago), or -1 when statfs(2) failed.
	FreeBytes int64

	// JournalBytes is the size of the stream journals on the spool's
	// filesystem (JournalGrew): bursts taken off Docker's pipes and not
	// yet in segments, or stored and not yet given back (less than 4 MiB
	// per journal).
	JournalBytes int64

	// WrittenBytes counts the compressed bytes Writers wrote to segment
	// files.
	WrittenBytes int64
	// Sealed counts the segments sealed, by reason: a key for each Reason
	// constant.
	Sealed map[string]uint64
	// DroppedSegments and DroppedRecords count the sealed segments, and
	// the records in them, that PolicyDropOldest deleted unuploaded.
	DroppedSegments int64
	DroppedRecords  int64
	// LostOnError counts the records that Writers had accepted and a
	// write error lost (see Writer.Append).
	LostOnError int64
}

// Stats returns the Spool's state and counters. It is safe for concurrent
// use and never waits on the disk; it looks at every sealed segment the
// Spool tracks, under the ledger's lock, so call it at a scrape's pace
// (seconds), not per record.
func (s *Spool) Stats() Stats {
	st := Stats{
		Limit:           s.limit,
		FreeBytes:       s.jan.free.Load(),
		JournalBytes:    s.journals.Load(),
		WrittenBytes:    s.jan.written.Load(),
		Sealed:          make(map[string]uint64, len(reasons)),
		DroppedSegments: s.jan.dropped.Load(),
		DroppedRecords:  s.jan.droppedRecords.Load(),
		LostOnError:     s.jan.lostOnError.Load(),
	}
	for i, r := range reasons {
		st.Sealed[r] = s.acct.seals[i].Load()
	}
	st.SealedBytes, st.SealedSegments, st.OldestSealed = s.acct.usage()
	return st
}

// CheckLock returns nil while the Spool holds the exclusive lock on its
// folder: it is open, and Root/.lock is still the file it locked (a lock
// file removed or replaced behind its back would let a second Spool take
// the folder). Otherwise it returns ErrClosed, or an error wrapping
// ErrLockLost. Safe for concurrent use; it makes two stat calls.
func (s *Spool) CheckLock() error {
	s.mu.Lock()
	f, closed := s.lock, s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// f may be closed meanwhile by the last Writer's Close after Close:
	// its Stat then fails, which is the truth.
	return checkLock(f, filepath.Join(s.root, lockFile))
}

// probePrefix names the files CheckWritable creates in the spool root.
const probePrefix = ".probe-"

// CheckWritable creates a file in the spool root, writes a byte to it and
// removes it, and returns the first error (a read-only or unreachable
// filesystem, lost permissions). It does not fsync: a full disk shows in
// Stats.FreeBytes and is the janitor's business. Safe for concurrent use.
func (s *Spool) CheckWritable() error {
	f, err := os.CreateTemp(s.root, probePrefix+"*")
	if err != nil {
		return fmt.Errorf("segment: spool not writable: %w", err)
	}
	_, werr := f.Write([]byte{'\n'})
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("segment: spool not writable: %w", err)
	}
	return nil
}
