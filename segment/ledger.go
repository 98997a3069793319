package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ledger tracks the bytes of the sealed segments in the spool (data file
// plus sidecar) as they change, so that the janitor knows them without
// walking the spool: seals and repairs add, Sealed.Remove (the uploader)
// and drops subtract. Walks (at Open, and the janitor's occasional
// correction) replace its contents with what is on disk. Its methods are
// safe for concurrent use.
//
// It also collects the container folders that may have become empty, for
// the janitor to prune, and counts the seals by reason.
type ledger struct {
	// limit is Config.Limit; poke is called when an addition takes the
	// total to the limit or beyond. Both are set before first use.
	limit int64
	poke  func()

	// seals counts the segments sealed since Open, by the index of their
	// reason in reasons (Writers and repairs alike); walks do not change it.
	seals [len(reasons)]atomic.Uint64

	// mu guards every field below.
	mu      sync.Mutex
	files   map[string]ledgerEntry // data file path → entry
	perDir  map[string]int         // container folder → its sealed segments in files
	total   int64                  // sum of the entries' bytes
	gen     uint64                 // counts changes, so the janitor can tell nothing changed
	walking bool                   // a walk is under way: changes are also kept in replay
	replay  []ledgerChange         // changes since the walk began, applied on top of its result
	idle    map[string]struct{}    // container folders that may hold nothing: prune candidates
}

// ledgerEntry is one sealed segment.
type ledgerEntry struct {
	dir   string
	bytes int64 // data file and sidecar
	// sealedAt is when the segment was sealed: the seal time for segments
	// added by a seal, the data file's modification time (its last write,
	// at or before the seal) for segments a walk found first.
	sealedAt time.Time
}

// ledgerChange is an addition (bytes >= 0) or removal (bytes < 0) of path.
type ledgerChange struct {
	path  string
	entry ledgerEntry
}

// add records a sealed segment, sealed at sealedAt with the given reason;
// adding a known path replaces its entry (and counts another seal).
func (l *ledger) add(dir, path string, bytes int64, sealedAt time.Time, reason string) {
	if i := reasonIndex(reason); i >= 0 {
		l.seals[i].Add(1)
	}
	l.mu.Lock()
	l.setLocked(path, ledgerEntry{dir: dir, bytes: bytes, sealedAt: sealedAt})
	over := l.limit > 0 && l.total >= l.limit
	l.mu.Unlock()
	if over && l.poke != nil {
		l.poke()
	}
}

// remove forgets a sealed segment that was deleted; unknown paths are
// ignored, so a removal reported twice counts once. A container folder left
// without sealed segments becomes a prune candidate.
func (l *ledger) remove(path string) {
	l.mu.Lock()
	l.setLocked(path, ledgerEntry{dir: filepath.Dir(path), bytes: -1})
	l.mu.Unlock()
}

// setLocked applies one change (bytes < 0 removes).
func (l *ledger) setLocked(path string, e ledgerEntry) {
	if l.files == nil {
		l.files = make(map[string]ledgerEntry)
		l.perDir = make(map[string]int)
	}
	if l.walking {
		l.replay = append(l.replay, ledgerChange{path: path, entry: e})
	}
	old, had := l.files[path]
	if had {
		l.total -= old.bytes
		if l.perDir[old.dir]--; l.perDir[old.dir] <= 0 {
			delete(l.perDir, old.dir)
			if e.bytes < 0 {
				l.markIdleLocked(old.dir)
			}
		}
		delete(l.files, path)
	}
	if e.bytes >= 0 {
		l.files[path] = e
		l.total += e.bytes
		l.perDir[e.dir]++
	}
	if had || e.bytes >= 0 {
		l.gen++
	}
}

// sealed returns the bytes of sealed segments and the change count.
func (l *ledger) sealed() (bytes int64, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.gen
}

// usage returns the bytes and number of sealed segments and the time the
// oldest of them was sealed (zero when there is none). It looks at every
// entry, under the lock: call it at a scrape's pace, not per record.
func (l *ledger) usage() (bytes int64, segments int, oldest time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.files {
		if oldest.IsZero() || e.sealedAt.Before(oldest) {
			oldest = e.sealedAt
		}
	}
	return l.total, len(l.files), oldest
}

// dirIdle makes a container folder a prune candidate if it holds no sealed
// segment; the Spool calls it when the folder's last Writer closes.
func (l *ledger) dirIdle(dir string) {
	l.mu.Lock()
	if l.perDir[dir] == 0 {
		l.markIdleLocked(dir)
	}
	l.mu.Unlock()
}

func (l *ledger) markIdleLocked(dir string) {
	if l.idle == nil {
		l.idle = make(map[string]struct{})
	}
	l.idle[dir] = struct{}{}
}

// takeIdle returns the prune candidates and forgets them.
func (l *ledger) takeIdle() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.idle) == 0 {
		return nil
	}
	out := make([]string, 0, len(l.idle))
	for d := range l.idle {
		out = append(out, d)
	}
	clear(l.idle)
	return out
}

// beginWalk starts keeping the changes made while a walk lists the spool.
func (l *ledger) beginWalk() {
	l.mu.Lock()
	l.walking = true
	l.replay = l.replay[:0]
	l.mu.Unlock()
}

// endWalk replaces the ledger with what the walk found, then re-applies the
// changes reported while it ran: each is a set or a delete of one path, so
// the result is right whether or not the walk saw that path. A segment the
// ledger knew keeps its seal time.
func (l *ledger) endWalk(w walkResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	replay := l.replay
	l.walking = false
	l.replay = nil
	for path, e := range w.files {
		if old, ok := l.files[path]; ok {
			e.sealedAt = old.sealedAt
			w.files[path] = e
		}
	}
	l.files = w.files
	l.perDir = make(map[string]int)
	l.total = 0
	for _, e := range l.files {
		l.total += e.bytes
		l.perDir[e.dir]++
	}
	for _, c := range replay {
		l.setLocked(c.path, c.entry)
	}
	for _, d := range w.idle {
		if l.perDir[d] == 0 {
			l.markIdleLocked(d)
		}
	}
	l.gen++
}

// walkResult is what a walk of the spool found.
type walkResult struct {
	files map[string]ledgerEntry // sealed segments
	idle  []string               // container folders without any segment file
	// maxSeq is one past the highest sequence number among the segment
	// file names and legacy seq files (only with walkSpool's legacy set).
	maxSeq uint64
}

// walkSpool lists every container folder of root: the sealed segments with
// the bytes of data file and sidecar, the folders holding no segment file
// (sealed or in progress), and with legacy, the sequence floor. Folders that
// vanish meanwhile (pruned) are skipped; other errors are returned with
// what was found.
func walkSpool(root string, legacy bool) (walkResult, error) {
	w := walkResult{files: make(map[string]ledgerEntry)}
	var errs []error
	err := eachContainerDir(root, func(dir string, files []os.DirEntry) {
		metas := make(map[string]int64)
		var datas []string
		segs := 0
		for _, f := range files {
			name := f.Name()
			if seq, ok := parseSeq(name); ok {
				w.maxSeq = max(w.maxSeq, seq+1)
			}
			switch {
			case strings.HasSuffix(name, DataSuffix):
				datas = append(datas, name)
				segs++
			case strings.HasSuffix(name, DataSuffix+PartialSuffix):
				segs++
			case strings.HasSuffix(name, DataSuffix+MetaSuffix):
				if fi, err := f.Info(); err == nil {
					metas[strings.TrimSuffix(name, MetaSuffix)] = fi.Size()
				}
			case name == legacySeqFile && legacy:
				n, err := readLegacySeq(dir)
				if err != nil {
					errs = append(errs, err)
				}
				w.maxSeq = max(w.maxSeq, n)
			}
		}
		for _, name := range datas {
			fi, err := os.Lstat(filepath.Join(dir, name))
			if err != nil {
				continue // removed meanwhile
			}
			w.files[filepath.Join(dir, name)] = ledgerEntry{dir: dir, bytes: fi.Size() + metas[name], sealedAt: fi.ModTime()}
		}
		if segs == 0 {
			w.idle = append(w.idle, dir)
		}
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("segment: walk %s: %w", root, err))
	}
	return w, errors.Join(errs...)
}
