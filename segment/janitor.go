package segment

import (
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Janitor timings and limits.
const (
	// lowWater is the fraction of the limit that drop-oldest frees down to,
	// so it does not drop one segment per visit at the edge.
	lowWater = 0.9
	// correctEvery is how often the janitor walks the spool to correct the
	// ledger (removals it was not told about, folders left empty).
	correctEvery = 60 * time.Second
	// confirmEvery bounds how often a spool that looks full is walked to
	// confirm it when nothing was sealed or removed since the last walk.
	confirmEvery = 5 * time.Second
	// fullLogEvery is how often "spool still full" is repeated while the
	// state does not change.
	fullLogEvery = 30 * time.Second
	// maxDropLines is how many drops of one visit are logged one by one;
	// the rest are summed up in one line.
	maxDropLines = 5
)

// janitor keeps the spool within its limit and the free space of its
// filesystem: it applies the Policy (dropping the oldest sealed segments,
// or shutting the gate that Appends wait at), repairs the segments that
// write errors abandoned, removes container folders left empty and ages
// out the quarantine. It decides on the ledger's sealed bytes and one
// statfs(2) per visit; it walks the spool only to confirm that the spool is
// full before acting on it, and once every correctEvery.
//
// Visits run on the Spool's ticker goroutine, every flush interval and
// whenever poked; tests call visit directly.
type janitor struct {
	root          string
	log           *slog.Logger
	now           func() time.Time
	limit         int64
	policy        Policy
	minFree       int64
	quarantineAge time.Duration
	onRecovered   func(Sealed)
	acct          *ledger
	gate          *spaceGate
	rep           *repairer
	// prune removes a container folder if no Writer holds it and it holds
	// nothing; it reports whether the folder is gone.
	prune func(dir string) bool

	kick           chan struct{} // pokes the ticker goroutine to visit
	dropped        atomic.Int64  // segments dropped by PolicyDropOldest
	droppedRecords atomic.Int64  // records in the segments dropped
	lostOnError    atomic.Int64  // accepted records lost to write errors
	written        atomic.Int64  // bytes Writers wrote to segment files
	free           atomic.Int64  // free bytes seen by the last usage(), -1 unknown
	walks          atomic.Int64  // walks of the spool, for tests
	visits         atomic.Int64  // visits, for tests
	pruned         atomic.Int64  // container folders removed, for tests
	// headroom is what may still be written before the filesystem's free
	// space falls below minFree, as of the last visit; writes count it
	// down and poke the janitor when it runs out.
	headroom atomic.Int64

	// mu guards abandoned: in-progress files left after write errors, for
	// the janitor to repair.
	mu        sync.Mutex
	abandoned []abandonedFile

	// visitMu serializes visits and guards the visit state below it.
	visitMu        sync.Mutex
	lastWalk       time.Time // last walk of the spool
	walkGen        uint64    // ledger generation after the last walk
	futileGen      uint64    // ledger generation when a drop scan found nothing to drop
	futile         bool      // futileGen is set
	wasFull        bool      // the spool was full at the last visit
	lastFullLog    time.Time // last "still full" line
	lastScanErrLog time.Time // last report of a scan's problems
	lastQuarCheck  time.Time // last pass over the quarantine
}

// usage is the state of the spool the janitor decides on.
type usage struct {
	sealed int64 // bytes of sealed segments (data and sidecars)
	free   int64 // bytes free on the spool's filesystem for unprivileged use, or -1
}

// full reports whether the sealed segments reach the limit or the disk is
// nearly out of space.
func (j *janitor) full(u usage) bool {
	return (j.limit > 0 && u.sealed >= j.limit) || (u.free >= 0 && u.free < j.minFree)
}

// usage reads the ledger and asks the filesystem for its free space, and
// rearms the headroom that writes count down.
func (j *janitor) usage() usage {
	u := usage{free: -1}
	u.sealed, _ = j.acct.sealed()
	var st syscall.Statfs_t
	if err := syscall.Statfs(j.root, &st); err == nil {
		u.free = int64(st.Bavail) * int64(st.Bsize)
	}
	j.free.Store(u.free)
	room := int64(math.MaxInt64)
	if u.free >= j.minFree {
		room = u.free - j.minFree
	}
	// When the disk is already full, writes need not poke: the next
	// regular visit looks again.
	j.headroom.Store(room)
	return u
}

// wrote counts bytes written to segment files, and down from the headroom:
// it pokes the janitor when that runs out, so a disk filling up is noticed
// before the next regular visit. Writers call it once per write(2).
func (j *janitor) wrote(n int64) {
	j.written.Add(n)
	if j.headroom.Add(-n) <= 0 {
		j.headroom.Store(math.MaxInt64) // one poke; the visit rearms it
		j.poke()
	}
}

// visit applies the policy, retries the repair of segments abandoned after
// a write error, prunes empty container folders and ages out quarantine.
func (j *janitor) visit() {
	j.visitMu.Lock()
	defer j.visitMu.Unlock()
	j.visits.Add(1)
	now := j.now()
	if now.Sub(j.lastWalk) >= correctEvery {
		j.measureLocked(now)
	}
	u := j.usage()
	if j.full(u) {
		// Act on the disk, not on a ledger that may lag behind removals
		// it was not told about.
		if _, gen := j.acct.sealed(); gen != j.walkGen || now.Sub(j.lastWalk) >= confirmEvery {
			j.measureLocked(now)
			u = j.usage()
		}
	}
	if j.full(u) && j.policy == PolicyDropOldest {
		u = j.dropOldestLocked(u, now)
	}
	full := j.full(u)
	j.reportLocked(full, u, now)
	if !full {
		j.repairAbandoned()
	}
	j.pruneIdle()
	j.ageQuarantineLocked(now)
}

// measureLocked walks the spool and resets the ledger to what it found.
func (j *janitor) measureLocked(now time.Time) {
	j.walks.Add(1)
	j.acct.beginWalk()
	w, err := walkSpool(j.root, false)
	j.acct.endWalk(w)
	if err != nil && now.Sub(j.lastScanErrLog) >= fullLogEvery {
		j.lastScanErrLog = now
		j.log.Error("spool walk", "err", err)
	}
	j.lastWalk = now
	_, j.walkGen = j.acct.sealed()
}

// dropSum adds up drops for the summary lines.
type dropSum struct {
	segments, bytes, records int64
	containers               map[string]struct{}
}

// containerDrops adds up, per container, the drops past maxDropLines in one
// visit: one summary line per container, so every lost record stays
// attributed to its container.
type containerDrops struct {
	name string
	sum  dropSum
}

// dropOldestLocked deletes sealed segments, oldest first, until their bytes
// are below lowWater of the limit and the disk has room.
func (j *janitor) dropOldestLocked(u usage, now time.Time) usage {
	if _, gen := j.acct.sealed(); j.futile && gen == j.futileGen {
		return u // nothing was sealed since a scan found nothing to drop
	}
	j.walks.Add(1)
	sealed, err := scanSealed(j.root, now, j.acct)
	if err != nil && now.Sub(j.lastScanErrLog) >= fullLogEvery {
		j.lastScanErrLog = now
		j.log.Error("spool scan", "err", err)
	}
	target := int64(float64(j.limit) * lowWater)
	var all dropSum
	var order []string
	rest := map[string]*containerDrops{}
	for _, seg := range sealed {
		if (j.limit <= 0 || u.sealed <= target) && (u.free < 0 || u.free >= j.minFree) {
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
		u.sealed, _ = j.acct.sealed()
		if u.free >= 0 {
			u.free += fi.Size()
		}
		j.dropped.Add(1)
		j.droppedRecords.Add(seg.Meta.Records)
		all.add(seg, fi.Size())
		if all.segments <= maxDropLines {
			j.log.Warn("spool full: dropped the oldest segment without uploading it",
				"container", seg.Meta.Container.ID, "name", strings.TrimPrefix(seg.Meta.Container.Name, "/"),
				"key", seg.Meta.Key, "bytes", fi.Size(), "records", seg.Meta.Records,
				"first_time", seg.Meta.FirstTime, "spool_bytes", u.sealed, "limit", j.limit)
		} else {
			id := seg.Meta.Container.ID
			cd := rest[id]
			if cd == nil {
				cd = &containerDrops{name: strings.TrimPrefix(seg.Meta.Container.Name, "/")}
				rest[id] = cd
				order = append(order, id)
			}
			cd.sum.add(seg, fi.Size())
		}
	}
	for _, id := range order {
		cd := rest[id]
		j.log.Warn("spool full: dropped more of the oldest segments without uploading them",
			"container", id, "name", cd.name, "segments", cd.sum.segments, "bytes", cd.sum.bytes,
			"records", cd.sum.records, "dropped_this_visit", all.segments,
			"spool_bytes", u.sealed, "limit", j.limit)
	}
	// A scan that could not list everything may have missed candidates.
	j.futile = all.segments == 0 && err == nil
	_, j.futileGen = j.acct.sealed()
	return u
}

func (d *dropSum) add(s Sealed, size int64) {
	d.segments++
	d.bytes += size
	d.records += s.Meta.Records
	if d.containers == nil {
		d.containers = make(map[string]struct{})
	}
	d.containers[s.Meta.Container.ID] = struct{}{}
}

// reportLocked shuts or opens the gate (PolicyBlock) and logs the state:
// every change, and "still full" at most every fullLogEvery.
func (j *janitor) reportLocked(full bool, u usage, now time.Time) {
	if j.policy == PolicyBlock {
		if j.gate.set(full) {
			if full {
				j.log.Warn("spool full: blocking log streams until uploads free space (policy block)",
					"spool_bytes", u.sealed, "limit", j.limit, "free", u.free, "min_free", j.minFree)
			} else {
				j.log.Info("spool has room again: log streams resume")
			}
		}
		j.wasFull = full
		return
	}
	switch {
	case full && (!j.wasFull || now.Sub(j.lastFullLog) >= fullLogEvery):
		j.lastFullLog = now
		j.log.Warn("spool still full: no sealed segment left to drop",
			"spool_bytes", u.sealed, "limit", j.limit, "free", u.free, "min_free", j.minFree)
	case !full && j.wasFull:
		j.log.Info("spool has room again", "spool_bytes", u.sealed, "limit", j.limit)
	}
	j.wasFull = full
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

// pruneIdle removes the container folders that the ledger saw emptied.
func (j *janitor) pruneIdle() {
	for _, dir := range j.acct.takeIdle() {
		if j.prune(dir) {
			j.pruned.Add(1)
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
