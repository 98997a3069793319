package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
)

// Config configures a Spool.
type Config struct {
	// Root is the spool folder for segments; it is created 0700 if missing.
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
	// Limit caps the bytes of all segment files in the spool (quarantine
	// excepted); 0 means no cap. What happens at the cap is Policy's call.
	Limit int64
	// Policy applies when the spool reaches Limit or its filesystem has less
	// than MinFree bytes available. Default PolicyDropOldest.
	Policy Policy
	// MinFree is the free space below which the spool counts as full, so a
	// disk that fills up for any reason is handled like the limit before
	// writes fail with ENOSPC. Default DefaultMinFree.
	MinFree int64
	// OnRecovered receives segments that the janitor repaired and sealed
	// after a write error (such as ENOSPC) abandoned them. It must not block.
	OnRecovered func(Sealed)
}

// DefaultMinFree is the default Config.MinFree.
const DefaultMinFree = 16 << 20

// Spool owns a folder of container folders holding segment files and the
// ticker goroutine that flushes idle Writers, seals segments that reached
// their age and runs the janitor. It is made of parts that each own their
// data and their lock (see the package documentation): the registry of
// Writers and container folders is the Spool's own; encoders are lent by
// an encoderPool; the janitor keeps the spool within its limit and repairs
// abandoned files; the gate holds Appends under PolicyBlock.
//
// All methods are safe for concurrent use. Close stops the ticker goroutine;
// it does not close Writers.
type Spool struct {
	root  string
	flush time.Duration
	log   *slog.Logger
	now   func() time.Time

	enc  encoderPool
	gate spaceGate
	jan  janitor
	rep  repairer

	// mu guards writers, dirs and closed.
	mu      sync.Mutex
	writers map[*Writer]struct{}
	dirs    map[string]*containerDir
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// containerDir serializes sequence allocation for one container folder. It is
// shared by the Writers of that container and dropped when the last one closes.
type containerDir struct {
	path string
	refs int // guarded by Spool.mu

	mu      sync.Mutex // guards nextSeq
	nextSeq uint64     // 0 until loaded
}

// Open creates the spool folder if needed and starts the ticker goroutine.
// It does not recover in-progress files: call Recover once, before the first
// NewWriter of a container whose leftovers should be repaired.
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
	if err := os.MkdirAll(cfg.Root, dirPerm); err != nil {
		return nil, fmt.Errorf("segment: create spool: %w", err)
	}
	s := &Spool{
		root:    cfg.Root,
		flush:   cfg.FlushInterval,
		log:     cfg.Logger,
		now:     cfg.Now,
		writers: make(map[*Writer]struct{}),
		dirs:    make(map[string]*containerDir),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.rep = repairer{root: cfg.Root, log: cfg.Logger, now: cfg.Now, recTime: cfg.RecordTime}
	s.jan = janitor{
		root:        cfg.Root,
		log:         cfg.Logger,
		limit:       cfg.Limit,
		policy:      cfg.Policy,
		minFree:     cfg.MinFree,
		onRecovered: cfg.OnRecovered,
		gate:        &s.gate,
		rep:         &s.rep,
		kick:        make(chan struct{}, 1),
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
// longer flushed or aged by time, and the limit is no longer enforced.
func (s *Spool) Close() error {
	s.gate.release()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	select {
	case <-s.done:
	default:
		close(s.stop)
		<-s.done
	}
	return nil
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

// acquireDir returns the shared state of a container folder, creating the
// folder 0700 when needed.
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
		path := filepath.Join(s.root, containerID)
		if err := os.MkdirAll(path, dirPerm); err != nil {
			return nil, fmt.Errorf("segment: create container folder: %w", err)
		}
		d = &containerDir{path: path}
		s.dirs[containerID] = d
	}
	d.refs++
	return d, nil
}

// releaseDir drops a reference taken by acquireDir.
func (s *Spool) releaseDir(containerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.dirs[containerID]; d != nil {
		d.refs--
		if d.refs <= 0 {
			delete(s.dirs, containerID)
		}
	}
}

// validContainerID accepts Docker's hex ids and conservative test names; it
// keeps every path this package builds inside the spool.
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

// allocSeq returns the next sequence number of the folder and persists the
// one after it before returning, so a number is never handed out twice, even
// across crashes. The first call loads the counter from the seq file and the
// names present in the folder, whichever is higher.
func (d *containerDir) allocSeq() (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nextSeq == 0 {
		n, err := loadSeq(d.path)
		if err != nil {
			return 0, err
		}
		d.nextSeq = n
	}
	seq := d.nextSeq
	if err := writeFileAtomic(filepath.Join(d.path, seqFile), []byte(strconv.FormatUint(seq+1, 10)+"\n")); err != nil {
		return 0, err
	}
	if err := syncDir(d.path); err != nil {
		return 0, err
	}
	d.nextSeq = seq + 1
	return seq, nil
}

// loadSeq reads the next sequence number of a folder: the larger of the seq
// file's value and one past the highest sequence among the file names. It is
// at least 1.
func loadSeq(dir string) (uint64, error) {
	next := uint64(1)
	b, err := os.ReadFile(filepath.Join(dir, seqFile))
	switch {
	case err == nil:
		n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("segment: %s: %w", filepath.Join(dir, seqFile), perr)
		}
		next = max(next, n)
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("segment: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("segment: %w", err)
	}
	for _, e := range entries {
		if seq, ok := parseSeq(e.Name()); ok {
			next = max(next, seq+1)
		}
	}
	return next, nil
}

// fileName is the data file name of a sequence number: names sort in
// sequence order, which is creation order.
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
