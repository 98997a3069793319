package segment

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// lowWater is the fraction of the limit that drop-oldest frees down to, so
// it does not drop one segment per tick at the edge.
const lowWater = 0.9

// janitor keeps the spool within its limit and the free space of its
// filesystem: it applies the Policy (dropping the oldest sealed segments,
// or shutting the gate that Appends wait at) and repairs the segments that
// write errors abandoned. It runs on the Spool's ticker goroutine, every
// flush interval and whenever poked; tests call visit directly.
type janitor struct {
	root        string
	log         *slog.Logger
	limit       int64
	policy      Policy
	minFree     int64
	onRecovered func(Sealed)
	gate        *spaceGate
	rep         *repairer

	kick        chan struct{} // pokes the ticker goroutine to visit
	dropped     atomic.Int64  // segments dropped by PolicyDropOldest
	lostOnError atomic.Int64  // accepted records lost to write errors
	// measured is the spool's size at the last measurement; sinceMeasure
	// counts bytes written to segment files since then.
	measured     atomic.Int64
	sinceMeasure atomic.Int64

	// mu guards abandoned: in-progress files left after write errors, for
	// the janitor to repair.
	mu        sync.Mutex
	abandoned []abandonedFile
}

// usage is a measurement of the spool.
type usage struct {
	bytes int64 // bytes of every file below the root, quarantine excepted
	free  int64 // bytes free on the spool's filesystem for unprivileged use... or -1
}

// measure walks the spool and asks the filesystem for its free space.
func (j *janitor) measure() usage {
	u := usage{free: -1}
	entries, _ := os.ReadDir(j.root)
	for _, e := range entries {
		if !isContainerDir(e) {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(j.root, e.Name()))
		for _, f := range files {
			if fi, err := f.Info(); err == nil && fi.Mode().IsRegular() {
				u.bytes += fi.Size()
			}
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(j.root, &st); err == nil {
		u.free = int64(st.Bavail) * int64(st.Bsize)
	}
	j.measured.Store(u.bytes)
	j.sinceMeasure.Store(0)
	return u
}

// wrote accounts bytes written to segment files since the last measurement
// and pokes the janitor as soon as they may have crossed the limit, so the
// spool overshoots its limit by little more than one write between the
// janitor's regular visits.
func (j *janitor) wrote(n int64) {
	if j.limit <= 0 {
		return
	}
	if j.measured.Load()+j.sinceMeasure.Add(n) >= j.limit {
		j.poke()
	}
}

// full reports whether a measurement is over the limit or the disk is
// nearly out of space.
func (j *janitor) full(u usage) bool {
	return (j.limit > 0 && u.bytes >= j.limit) || (u.free >= 0 && u.free < j.minFree)
}

// visit measures, applies the policy, and retries the repair of segments
// abandoned after a write error.
func (j *janitor) visit() {
	u := j.measure()
	if j.full(u) && j.policy == PolicyDropOldest {
		u = j.dropOldest(u)
	}
	j.setBlocked(j.policy == PolicyBlock && j.full(u))
	if !j.full(u) {
		j.repairAbandoned()
	}
}

// dropOldest deletes sealed segments, oldest first, until the spool is
// below lowWater of its limit and the disk has room.
func (j *janitor) dropOldest(u usage) usage {
	sealed, err := ScanSealed(j.root)
	if err != nil {
		j.log.Error("spool scan", "err", err)
	}
	target := int64(float64(j.limit) * lowWater)
	for _, seg := range sealed {
		if (j.limit <= 0 || u.bytes <= target) && (u.free < 0 || u.free >= j.minFree) {
			break
		}
		fi, err := os.Stat(seg.Path())
		if err != nil {
			continue // uploaded meanwhile
		}
		if err := seg.Remove(); err != nil {
			j.log.Error("spool full: cannot drop segment", "path", seg.Path(), "err", err)
			continue
		}
		u.bytes -= fi.Size()
		if u.free >= 0 {
			u.free += fi.Size()
		}
		j.log.Warn("spool full: dropped the oldest segment without uploading it",
			"container", seg.Meta.Container.ID, "name", strings.TrimPrefix(seg.Meta.Container.Name, "/"),
			"key", seg.Meta.Key, "bytes", fi.Size(), "records", seg.Meta.Records,
			"first_time", seg.Meta.FirstTime, "spool_bytes", u.bytes, "limit", j.limit)
		j.dropped.Add(1)
	}
	if j.full(u) {
		j.log.Warn("spool still full: no sealed segment left to drop", "spool_bytes", u.bytes, "limit", j.limit, "free", u.free)
	}
	return u
}

// setBlocked shuts or opens the gate and logs when that changes it.
func (j *janitor) setBlocked(b bool) {
	if !j.gate.set(b) {
		return
	}
	if b {
		j.log.Warn("spool full: blocking log streams until uploads free space (policy block)", "limit", j.limit)
	} else {
		j.log.Info("spool has room again: log streams resume")
	}
}

// abandonedFile is an in-progress file left behind after a write error.
type abandonedFile struct {
	dir, name string
	container string
	appended  int64 // records the Writer had accepted into it
}

// abandon records an in-progress file left behind after a write error, to
// be repaired and sealed by the janitor once there is room.
func (j *janitor) abandon(a abandonedFile) {
	j.mu.Lock()
	j.abandoned = append(j.abandoned, a)
	j.mu.Unlock()
	j.poke()
}

// repairAbandoned repairs and seals abandoned files, handing each result to
// onRecovered.
func (j *janitor) repairAbandoned() {
	j.mu.Lock()
	todo := j.abandoned
	j.abandoned = nil
	j.mu.Unlock()
	for i, a := range todo {
		r := j.rep.recoverFile(a.dir, a.name)
		j.rep.logReport(r)
		if r.Err != nil && !r.Quarantined && isNoSpace(r.Err) {
			j.mu.Lock()
			j.abandoned = append(j.abandoned, todo[i:]...)
			j.mu.Unlock()
			return
		}
		if lost := a.appended - r.Records; lost > 0 {
			// Accepted records that never reached the file whole: the
			// write that failed, and whatever was buffered with it.
			j.log.Warn("records lost to a write error", "container", a.container, "records", lost,
				"kept", r.Records, "path", r.Path)
			j.lostOnError.Add(lost)
		}
		if r.Sealed != nil && j.onRecovered != nil {
			j.onRecovered(*r.Sealed)
		}
	}
}

// poke asks the janitor to visit soon.
func (j *janitor) poke() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}
