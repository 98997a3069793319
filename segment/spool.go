package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of Config and WriterOptions.
const (
	DefaultMaxSize       = 64 << 20
	DefaultMaxAge        = 5 * time.Minute
	DefaultFlushInterval = time.Second
	// DefaultWindowSize is the zstd window of every encoder: the memory that
	// back-references may reach, and the bulk of an active stream's memory.
	DefaultWindowSize = 512 << 10
	// DefaultMinFree is the default Config.MinFree.
	DefaultMinFree = 16 << 20
	// DefaultQuarantineMaxAge is the default Config.QuarantineMaxAge.
	DefaultQuarantineMaxAge = 7 * 24 * time.Hour
)

// Config configures a Spool.
type Config struct {
	// Root is the spool folder for segments; it is created 0700 if missing.
	// One Spool at a time may have it open (see Open).
	Root string
	// FlushInterval bounds how long an appended record may stay in memory
	// before it is written to the file with write(2), and how long a stream may
	// be idle before its encoder is released. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// Logger receives recovery and sealing reports. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now. Tests inject a fake one and call Tick.
	Now func() time.Time
	// NoTicker disables the background goroutine that calls Tick every
	// FlushInterval/4; tests that drive time themselves set it.
	NoTicker bool
	// RecordTime extracts a record's timestamp; recovery uses it to restore
	// Meta.LastTime. When nil, or when it fails, recovery uses the file's
	// modification time.
	RecordTime func(rec []byte) (time.Time, bool)
	// Limit caps the bytes of sealed segments in the spool (data files and
	// sidecars: the backlog waiting for upload); 0 means no cap. What
	// happens at the cap is Policy's call. Segments being written do not
	// count: they use up to one segment size per open stream on top of the
	// limit (see CheckCapacity), and quarantined files do not count either
	// (see QuarantineMaxAge).
	Limit int64
	// Policy applies when the spool reaches Limit or its filesystem has less
	// than MinFree bytes available. Default PolicyDropOldest.
	Policy Policy
	// MinFree is the free space below which the spool counts as full, so a
	// disk that fills up for any reason is handled like the limit before
	// writes fail with ENOSPC. Default DefaultMinFree.
	MinFree int64
	// QuarantineMaxAge is how long a quarantined file is kept before the
	// janitor deletes it (logging each deletion). Default
	// DefaultQuarantineMaxAge.
	QuarantineMaxAge time.Duration
	// OnRecovered receives segments that the janitor repaired and sealed
	// after a write error (such as ENOSPC) abandoned them. It must not block.
	OnRecovered func(Sealed)
}

// Spool owns a folder of container folders holding segment files and the
// ticker goroutine that flushes idle Writers, seals segments that reached
// their age and runs the janitor. It is made of parts that each own their
// data and their lock (see the package documentation): the Spool itself
// keeps the registry of Writers and container folders; an encoderPool lends
// encoders; a seqCounter hands out sequence numbers; a ledger tracks the
// bytes of sealed segments; the janitor keeps the spool within its limit,
// repairs abandoned files and prunes empty folders; the gate holds Appends
// under PolicyBlock.
//
// All methods are safe for concurrent use. Close stops the ticker goroutine;
// it does not close Writers.
type Spool struct {
	root  string
	flush time.Duration
	log   *slog.Logger
	now   func() time.Time
	limit int64

	enc  encoderPool
	seq  seqCounter
	acct ledger
	gate spaceGate
	jan  janitor
	rep  repairer
	// journals counts the bytes of the Driver's stream journals on the
	// spool's disk (JournalGrew).
	journals atomic.Int64

	// mu guards writers, dirs, closed, lock, openBytes and lastCapWarn.
	mu          sync.Mutex
	writers     map[*Writer]struct{}
	dirs        map[string]*containerDir // by container id
	closed      bool
	lock        *os.File  // holds the flock on root/.lock; nil once released
	openBytes   int64     // sum of the open Writers' MaxSize
	lastCapWarn time.Time // last warning that open segments may exceed Limit

	stop chan struct{}
	done chan struct{}
}

// containerDir is a container folder in use: it exists as long as refs > 0.
type containerDir struct {
	path string
	refs int // Writers holding it; guarded by Spool.mu
}

// capWarnEvery bounds how often NewWriter repeats the capacity warning.
const capWarnEvery = 10 * time.Minute

// Open creates the spool folder if needed, takes its lock, measures it and
// starts the ticker goroutine.
//
// The lock is an exclusive flock(2) on Root/.lock, taken without waiting:
// when another Spool (in another process, or in this one) has the folder
// open, Open fails with an error wrapping ErrLocked that names the folder.
// The lock is released when Close has been called and every Writer is
// closed, or when the process exits.
//
// Open does not recover in-progress files: call Recover once, before the
// first NewWriter of a container whose leftovers should be repaired.
func Open(cfg Config) (*Spool, error) {
	if cfg.Root == "" {
		return nil, errors.New("segment: Config.Root is empty")
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policy == "" {
		cfg.Policy = PolicyDropOldest
	}
	if _, err := ParsePolicy(string(cfg.Policy)); err != nil {
		return nil, err
	}
	if cfg.MinFree <= 0 {
		cfg.MinFree = DefaultMinFree
	}
	if cfg.QuarantineMaxAge <= 0 {
		cfg.QuarantineMaxAge = DefaultQuarantineMaxAge
	}
	if err := mkdirAllSync(cfg.Root); err != nil {
		return nil, fmt.Errorf("segment: create spool: %w", err)
	}
	lock, err := lockRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		root:    cfg.Root,
		flush:   cfg.FlushInterval,
		log:     cfg.Logger,
		now:     cfg.Now,
		limit:   cfg.Limit,
		writers: make(map[*Writer]struct{}),
		dirs:    make(map[string]*containerDir),
		lock:    lock,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.rep = repairer{root: cfg.Root, log: cfg.Logger, now: cfg.Now, recTime: cfg.RecordTime, acct: &s.acct}
	s.jan = janitor{
		root:          cfg.Root,
		log:           cfg.Logger,
		now:           cfg.Now,
		limit:         cfg.Limit,
		policy:        cfg.Policy,
		minFree:       cfg.MinFree,
		quarantineAge: cfg.QuarantineMaxAge,
		onRecovered:   cfg.OnRecovered,
		acct:          &s.acct,
		gate:          &s.gate,
		rep:           &s.rep,
		prune:         s.pruneDir,
		kick:          make(chan struct{}, 1),
	}
	s.acct.limit = cfg.Limit
	s.acct.poke = s.jan.poke
	// The first walk: the ledger's starting point, the folders left empty,
	// and the sequence floor of spools written by earlier versions.
	s.jan.walks.Add(1)
	s.acct.beginWalk()
	w, err := walkSpool(cfg.Root, true)
	if err != nil {
		// What could not be read cannot raise the sequence floor; the
		// counter file, once written, does not depend on it.
		cfg.Logger.Error("spool walk at open", "err", err)
	}
	s.acct.endWalk(w)
	s.jan.lastWalk = cfg.Now()
	s.jan.usage() // arms the headroom that writes count down
	if err := s.seq.open(cfg.Root, w.maxSeq); err != nil {
		lock.Close()
		return nil, err
	}
	if cfg.NoTicker {
		close(s.done)
	} else {
		go s.tickLoop()
	}
	return s, nil
}

// Root returns the spool folder.
func (s *Spool) Root() string { return s.root }

// Close stops the ticker goroutine and waits for it, and releases Appends
// waiting for space (PolicyBlock) for good. Writers stay usable but are no
// longer flushed or aged by time, the limit is no longer enforced, and no
// new Writer can be created. The spool's lock is released once every
// Writer is closed too.
func (s *Spool) Close() error {
	s.gate.release()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.unlockIfDoneLocked()
	s.mu.Unlock()
	select {
	case <-s.done:
	default:
		close(s.stop)
		<-s.done
	}
	return nil
}

// unlockIfDoneLocked releases the spool's lock once the Spool is closed and
// no Writer is left that could still write into it.
func (s *Spool) unlockIfDoneLocked() {
	if s.closed && len(s.writers) == 0 && s.lock != nil {
		s.lock.Close() // closing the last descriptor drops the flock
		s.lock = nil
	}
}

// tickLoop calls Tick every quarter flush interval and has the janitor visit
// every flush interval (or when poked) until Close.
func (s *Spool) tickLoop() {
	defer close(s.done)
	t := time.NewTicker(s.flush / 4)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-s.stop:
			return
		case <-s.jan.kick:
			s.jan.visit()
		case <-t.C:
			s.Tick()
			if n++; n%4 == 0 {
				s.jan.visit()
				s.enc.returnMemory(time.Now())
			}
		}
	}
}

// Dropped returns how many segments PolicyDropOldest has deleted unuploaded.
func (s *Spool) Dropped() int64 { return s.jan.dropped.Load() }

// LostOnError returns how many accepted records were lost because a write
// error abandoned their segment before they were written whole.
func (s *Spool) LostOnError() int64 { return s.jan.lostOnError.Load() }

// Tick flushes Writers with data older than the flush interval, releases the
// encoders of idle Writers, and seals segments older than their maximum age.
// The ticker goroutine calls it; tests with NoTicker call it directly.
func (s *Spool) Tick() {
	s.mu.Lock()
	ws := make([]*Writer, 0, len(s.writers))
	for w := range s.writers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	now := s.now()
	for _, w := range ws {
		w.tick(now)
	}
}

// CheckCapacity logs a warning and returns false when the spool's Limit is
// smaller than openStreams segments of segmentSize bytes, the most that
// open streams may hold unsealed. Such a limit still works, but segments
// sealed together (streams reaching their age at once, containers stopping,
// a shutdown) can take the spool over it before the uploader had a chance,
// so PolicyDropOldest drops them unuploaded (or PolicyBlock blocks), and the
// disk must hold the open segments on top of the limit. The plugin calls it
// at start with the number of streams it resumes and its largest segment
// size; NewWriter runs the same check on the open Writers' MaxSize, warning
// at most every 10 minutes.
func (s *Spool) CheckCapacity(openStreams int, segmentSize int64) bool {
	open := int64(openStreams) * segmentSize
	if s.limit <= 0 || open <= s.limit {
		return true
	}
	s.warnCapacity(openStreams, open)
	return false
}

func (s *Spool) warnCapacity(streams int, open int64) {
	s.log.Warn("spool limit is smaller than what open streams may hold unsealed: segments sealed together "+
		"can exceed it before they are uploaded, and be dropped (drop-oldest) or block logging (block); "+
		"raise the spool limit or lower segment-size",
		"limit", s.limit, "open_streams", streams, "open_segment_bytes", open, "policy", s.jan.policy)
}

// register adds a new Writer to the registry.
func (s *Spool) register(w *Writer) {
	s.mu.Lock()
	s.writers[w] = struct{}{}
	s.openBytes += w.opts.MaxSize
	n, open := len(s.writers), s.openBytes
	warn := s.limit > 0 && open > s.limit && (s.lastCapWarn.IsZero() || s.now().Sub(s.lastCapWarn) >= capWarnEvery)
	if warn {
		s.lastCapWarn = s.now()
	}
	s.mu.Unlock()
	if warn {
		s.warnCapacity(n, open)
	}
}

// unregister removes a closed Writer and releases its container folder.
func (s *Spool) unregister(w *Writer) {
	s.mu.Lock()
	delete(s.writers, w)
	s.openBytes -= w.opts.MaxSize
	d := s.dirs[w.opts.Container.ID]
	if d != nil {
		if d.refs--; d.refs <= 0 {
			delete(s.dirs, w.opts.Container.ID)
		} else {
			d = nil
		}
	}
	s.unlockIfDoneLocked()
	s.mu.Unlock()
	if d != nil {
		s.acct.dirIdle(d.path)
	}
}

// acquireDir returns the shared state of a container folder, creating the
// folder 0700 (and syncing the spool root) when needed.
func (s *Spool) acquireDir(containerID string) (*containerDir, error) {
	if !validContainerID(containerID) {
		return nil, fmt.Errorf("segment: container id %q: want 1 to 128 characters of [0-9a-zA-Z_-]", containerID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	d := s.dirs[containerID]
	if d == nil {
		// Under mu, so that pruneDir cannot remove the folder between
		// its creation and the registration.
		path := filepath.Join(s.root, containerID)
		if err := mkdirAllSync(path); err != nil {
			return nil, fmt.Errorf("segment: create container folder: %w", err)
		}
		d = &containerDir{path: path}
		s.dirs[containerID] = d
	}
	d.refs++
	return d, nil
}

// pruneDir removes a container folder that no Writer holds and that holds
// no segment, with the leftovers of earlier versions and interrupted
// removals (a legacy seq file, sidecars without data), and syncs the spool
// root. It reports whether the folder is gone. A folder holding anything
// else stays.
func (s *Spool) pruneDir(dir string) bool {
	id := filepath.Base(dir)
	if filepath.Dir(dir) != filepath.Clean(s.root) || !validContainerID(id) {
		return false
	}
	s.mu.Lock()
	if s.dirs[id] != nil {
		s.mu.Unlock()
		return false // the last Writer's Close makes it a candidate again
	}
	// rmdir(2) removes only an empty folder, so nothing written meanwhile
	// can be lost; the lock keeps acquireDir from reusing the folder
	// between the check and the removal.
	err := os.Remove(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && removeLeftovers(dir) {
		err = os.Remove(dir)
	}
	s.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		if !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			s.log.Warn("cannot remove empty container folder", "path", dir, "err", err)
		}
		return false
	}
	if err := syncDir(s.root); err != nil {
		s.log.Warn("removed container folder", "path", dir, "err", err)
	}
	return true
}

// removeLeftovers deletes what an otherwise empty container folder may
// hold: a legacy seq file (the spool-wide counter is above it since Open),
// sidecars whose data file is gone (an interrupted removal) and their
// temporary files. It deletes nothing and returns false when the folder
// holds a segment (sealed or in progress), a segment being repaired (whose
// in-progress file may already be quarantined), or anything it does not
// know.
func removeLeftovers(dir string) bool {
	files, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, f := range files {
		n := f.Name()
		known := n == legacySeqFile || strings.HasSuffix(n, MetaSuffix) ||
			strings.HasSuffix(n, MetaSuffix+".tmp") || n == legacySeqFile+".tmp"
		if f.IsDir() || !known {
			return false
		}
	}
	for _, f := range files {
		if err := os.Remove(filepath.Join(dir, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// validContainerID accepts Docker's hex ids and conservative test names; it
// keeps every path this package builds inside the spool, and apart from the
// spool's own entries (which start with '.' or '_').
func validContainerID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '_' || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// mkdirAllSync creates dir and its missing parents 0700, syncing the parent
// of each folder it creates so that the creation is durable.
func mkdirAllSync(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirPerm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}
