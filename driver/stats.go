package driver

import (
	"errors"
	"sync/atomic"

	"github.com/s3logs/s3logs/driver/fifo"
)

// Stream kinds: the index of a record's counters.
const (
	kindStdout = iota
	kindStderr
	kindOther // a source Docker does not send; counted, not dropped
	numKinds
)

// kindOf returns the kind of a record's source.
func kindOf(source string) int {
	switch source {
	case "stdout":
		return kindStdout
	case "stderr":
		return kindStderr
	}
	return kindOther
}

// In counts what streams read from their FIFOs for one source.
type In struct {
	// Records counts records: lines, joined from Docker's 16 KiB pieces.
	Records uint64
	// Bytes counts the bytes of their lines as the container wrote them
	// (newline included when there was one).
	Bytes uint64
}

// Stats is a snapshot of a Driver's open streams and of its counters since
// New. Counters only grow.
type Stats struct {
	// StreamsOpen is the number of streams being read (and of FIFOs
	// being opened).
	StreamsOpen int
	// StreamsReattached counts the streams Reattach resumed after the
	// plugin restarted (its retries included).
	StreamsReattached uint64
	// Stdout, Stderr and Other count the records read, by source; Other
	// is for a source other than stdout and stderr, which Docker does not
	// send. Records a re-attached FIFO repeated are counted too, before
	// deduplication drops them.
	Stdout, Stderr, Other In
	// NotStored counts records the segment writer refused: a write error
	// while no segment could be opened ("log records not stored" in the
	// log). Records lost with a segment abandoned after a write error are
	// the spool's (segment.Stats.LostOnError).
	NotStored uint64
	// Unstorable counts records read from a stream that has no usable
	// destination (re-attached with options that no longer validate):
	// read so that the container never blocks, and counted only.
	Unstorable uint64
	// CorruptFrames counts the frames the decoder could not trust (a
	// payload that is not a LogEntry, a length over the limit, a torn
	// frame): each cost at least the record it held; the stream went on
	// at the next frame boundary.
	CorruptFrames uint64
	// SkippedBytes counts the FIFO bytes skipped to find the next frame
	// boundary, after a corrupt frame or at a re-attach, and those
	// discarded after a read of the FIFO failed.
	SkippedBytes uint64
}

// Stats returns the Driver's open streams and counters. Safe for concurrent
// use; it takes the Driver's lock briefly. Each stream adds its record
// counts once per read of its FIFO, before the read, so a stream waiting
// for input has added everything it read; a stream busy reading may be up
// to one read (64 KiB of frames) ahead of the counts.
func (d *Driver) Stats() Stats {
	st := Stats{
		StreamsOpen:       d.Streams(),
		StreamsReattached: d.counts.reattached.Load(),
		NotStored:         d.counts.notStored.Load(),
		Unstorable:        d.counts.unstorable.Load(),
		CorruptFrames:     d.counts.corruptFrames.Load(),
		SkippedBytes:      d.counts.skippedBytes.Load(),
	}
	ins := [numKinds]*In{&st.Stdout, &st.Stderr, &st.Other}
	for k, in := range ins {
		in.Records = d.counts.records[k].Load()
		in.Bytes = d.counts.bytes[k].Load()
	}
	return st
}

// sharedCounts are a Driver's counters, which its streams add to from
// their reader goroutines.
type sharedCounts struct {
	records, bytes [numKinds]atomic.Uint64
	notStored      atomic.Uint64
	unstorable     atomic.Uint64
	corruptFrames  atomic.Uint64
	skippedBytes   atomic.Uint64
	reattached     atomic.Uint64
}

// streamCounts are the counts a stream has not yet added to the shared
// ones. Only the stream's reader goroutine touches them, per record and
// without synchronisation; publish moves them to the shared atomics once
// per FIFO read.
type streamCounts struct {
	records, bytes [numKinds]uint64
	notStored      uint64
	unstorable     uint64
}

// add moves c into the shared counters.
func (sc *sharedCounts) add(c *streamCounts) {
	for k := range numKinds {
		if c.records[k] != 0 {
			sc.records[k].Add(c.records[k])
			sc.bytes[k].Add(c.bytes[k])
		}
	}
	if c.notStored != 0 {
		sc.notStored.Add(c.notStored)
	}
	if c.unstorable != 0 {
		sc.unstorable.Add(c.unstorable)
	}
}

// skipped counts a resynchronisation; a requested one (at a re-attach)
// lost no frame it could have trusted.
func (sc *sharedCounts) skipped(skip *fifo.SkipError) {
	sc.skippedBytes.Add(uint64(skip.Bytes))
	if !errors.Is(skip.Cause, fifo.ErrResyncRequested) {
		sc.corruptFrames.Add(1)
	}
}
