package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// lowWater is the fraction of the limit that drop-oldest frees down to, so
// it does not drop one segment per tick at the edge.
const lowWater = 0.9

// usage is a measurement of the spool.
type usage struct {
	bytes int64 // bytes of every file below the root, quarantine excepted
	free  int64 // bytes free on the spool's filesystem for unprivileged use... or -1
}

// measure walks the spool and asks the filesystem for its free space.
func (s *Spool) measure() usage {
	u := usage{free: -1}
	entries, _ := os.ReadDir(s.root)
	for _, e := range entries {
		if !isContainerDir(e) {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(s.root, e.Name()))
		for _, f := range files {
			if fi, err := f.Info(); err == nil && fi.Mode().IsRegular() {
				u.bytes += fi.Size()
			}
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root, &st); err == nil {
		u.free = int64(st.Bavail) * int64(st.Bsize)
	}
	s.measured.Store(u.bytes)
	s.sinceMeasure.Store(0)
	return u
}

// wrote accounts bytes written to segment files since the last measurement
// and pokes the janitor as soon as they may have crossed the limit, so the
// spool overshoots its limit by little more than one write between the
// janitor's regular visits.
func (s *Spool) wrote(n int64) {
	if s.limit <= 0 {
		return
	}
	if s.measured.Load()+s.sinceMeasure.Add(n) >= s.limit {
		s.poke()
	}
}

// full reports whether a measurement is over the limit or the disk is
// nearly out of space.
func (s *Spool) full(u usage) bool {
	return (s.limit > 0 && u.bytes >= s.limit) || (u.free >= 0 && u.free < s.minFree)
}

// enforce is the janitor's visit: measure, apply the policy, and retry the
// repair of segments abandoned after a write error.
func (s *Spool) enforce() {
	u := s.measure()
	if s.full(u) && s.policy == PolicyDropOldest {
		u = s.dropOldest(u)
	}
	s.setBlocked(s.policy == PolicyBlock && s.full(u))
	if !s.full(u) {
		s.repairAbandoned()
	}
}

// dropOldest deletes sealed segments, oldest first, until the spool is
// below lowWater of its limit and the disk has room.
func (s *Spool) dropOldest(u usage) usage {
	sealed, err := ScanSealed(s.root)
	if err != nil {
		s.log.Error("spool scan", "err", err)
	}
	target := int64(float64(s.limit) * lowWater)
	for _, seg := range sealed {
		if (s.limit <= 0 || u.bytes <= target) && (u.free < 0 || u.free >= s.minFree) {
			break
		}
		fi, err := os.Stat(seg.Path())
		if err != nil {
			continue // uploaded meanwhile
		}
		if err := seg.Remove(); err != nil {
			s.log.Error("spool full: cannot drop segment", "path", seg.Path(), "err", err)
			continue
		}
		u.bytes -= fi.Size()
		if u.free >= 0 {
			u.free += fi.Size()
		}
		s.log.Warn("spool full: dropped the oldest segment without uploading it",
			"container", seg.Meta.Container.ID, "name", strings.TrimPrefix(seg.Meta.Container.Name, "/"),
			"key", seg.Meta.Key, "bytes", fi.Size(), "records", seg.Meta.Records,
			"first_time", seg.Meta.FirstTime, "spool_bytes", u.bytes, "limit", s.limit)
		s.dropped.Add(1)
	}
	if s.full(u) {
		s.log.Warn("spool still full: no sealed segment left to drop", "spool_bytes", u.bytes, "limit", s.limit, "free", u.free)
	}
	return u
}

// setBlocked updates the block flag and wakes waiting Appends when it clears.
func (s *Spool) setBlocked(b bool) {
	s.blockMu.Lock()
	defer s.blockMu.Unlock()
	if s.blocked == b {
		return
	}
	s.blocked = b
	if b {
		s.log.Warn("spool full: blocking log streams until uploads free space (policy block)", "limit", s.limit)
	} else {
		s.log.Info("spool has room again: log streams resume")
		s.blockCond.Broadcast()
	}
}

// waitForSpace blocks while the spool is full under PolicyBlock. Close
// releases every waiter for good.
func (s *Spool) waitForSpace() {
	s.blockMu.Lock()
	for s.blocked && !s.unblocked {
		s.blockCond.Wait()
	}
	s.blockMu.Unlock()
}

// releaseWaiters ends blocking for good (at shutdown).
func (s *Spool) releaseWaiters() {
	s.blockMu.Lock()
	s.unblocked = true
	s.blockCond.Broadcast()
	s.blockMu.Unlock()
}

// abandonedFile is an in-progress file left behind after a write error.
type abandonedFile struct {
	dir, name string
	container string
	appended  int64 // records the Writer had accepted into it
}

// abandon records an in-progress file left behind after a write error, to
// be repaired and sealed by the janitor once there is room.
func (s *Spool) abandon(a abandonedFile) {
	s.mu.Lock()
	s.abandoned = append(s.abandoned, a)
	s.mu.Unlock()
	s.poke()
}

// repairAbandoned repairs and seals abandoned files, handing each result to
// OnAbandonedSeal.
func (s *Spool) repairAbandoned() {
	s.mu.Lock()
	todo := s.abandoned
	s.abandoned = nil
	s.mu.Unlock()
	for i, a := range todo {
		r := s.recoverFile(a.dir, a.name)
		s.logReport(r)
		if r.Err != nil && !r.Quarantined && isNoSpace(r.Err) {
			s.mu.Lock()
			s.abandoned = append(s.abandoned, todo[i:]...)
			s.mu.Unlock()
			return
		}
		if lost := a.appended - r.Records; lost > 0 {
			// Accepted records that never reached the file whole: the
			// write that failed, and whatever was buffered with it.
			s.log.Warn("records lost to a write error", "container", a.container, "records", lost,
				"kept", r.Records, "path", r.Path)
			s.lostOnError.Add(lost)
		}
		if r.Sealed != nil && s.onRecovered != nil {
			s.onRecovered(*r.Sealed)
		}
	}
}

// poke asks the janitor to run soon.
func (s *Spool) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// isNoSpace reports whether err means the disk is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
