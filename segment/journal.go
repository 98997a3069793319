package segment

import "math"

// JournalReserve is the free space, beyond MinFree, that stream journals
// leave to segments: a journal grows only while the disk keeps this much
// for the segments its bytes will become.
const JournalReserve = 64 << 20

// JournalRoom returns how many more bytes the stream journals (the
// Driver's per-stream extension of Docker's pipe, kept in the spool's
// filesystem) may take now. It is zero while the spool is full: the gate
// is shut under PolicyBlock, the filesystem has less than MinFree +
// JournalReserve free (as of the janitor's last visit, counted down by
// every write since), or, with a Limit, sealed segments and journals
// together reach it. Journals then stop growing and streams read their
// FIFO directly, so the spool's policy applies to them as before. Safe
// for concurrent use.
func (s *Spool) JournalRoom() int64 {
	if s.gate.shut.Load() {
		return 0
	}
	j := &s.jan
	if free := j.free.Load(); free >= 0 && free < j.minFree {
		return 0
	}
	room := j.headroom.Load()
	if room == math.MaxInt64 {
		// Rearmed after a poke, or unknown: go by the last visit's reading.
		room = j.free.Load() - j.minFree
		if j.free.Load() < 0 {
			room = math.MaxInt64
		}
	}
	room -= JournalReserve
	if s.limit > 0 {
		sealed, _ := s.acct.sealed()
		room = min(room, s.limit-sealed-s.journals.Load())
	}
	return max(room, 0)
}

// JournalGrew counts n bytes that the stream journals took (n > 0) or gave
// back (n < 0) on the spool's filesystem. Safe for concurrent use.
func (s *Spool) JournalGrew(n int64) {
	s.journals.Add(n)
	if n > 0 && s.jan.headroom.Add(-n) <= 0 {
		s.jan.poke()
	}
}

// JournalBytes returns the bytes of the stream journals (JournalGrew).
func (s *Spool) JournalBytes() int64 { return s.journals.Load() }
