package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3logs/s3logs/driver/logopt"
	"github.com/s3logs/s3logs/keys"
	"github.com/s3logs/s3logs/segment"
)

// DefaultFIFODir is where Docker creates logging FIFOs inside the plugin.
const DefaultFIFODir = "/run/docker/logging"

// errOpenFIFO wraps a failure to open a FIFO: the one re-attach failure
// worth retrying as it is.
var errOpenFIFO = errors.New("driver: open FIFO")

// Errors returned by StartLogging; compare with errors.Is.
var (
	ErrBadFile     = errors.New("driver: bad FIFO path")
	ErrDuplicate   = errors.New("driver: FIFO already being read")
	ErrShutdown    = errors.New("driver: shutting down")
	ErrMissingFile = errors.New("driver: missing File")
)

// Enqueuer takes sealed segments for upload. Enqueue must not block on the
// network; urgent segments (their container stopped) go ahead of the backlog.
type Enqueuer interface {
	Enqueue(s segment.Sealed, urgent bool)
}

// Config configures a Driver.
type Config struct {
	// Spool receives the segments; the Driver does not close it.
	Spool *segment.Spool
	// Uploader is told about every sealed segment.
	Uploader Enqueuer
	// StateDir keeps one file per live stream for Reattach. Created 0700.
	StateDir string
	// FIFODir is the only folder FIFOs are accepted from. Default DefaultFIFODir.
	FIFODir string
	// Hostname fills the {{.Hostname}} key template field.
	Hostname string
	// Logger receives the plugin's own logs. Default slog.Default().
	Logger *slog.Logger
	// ReadLogs, when set, serves /LogDriver.ReadLogs (docker logs) and
	// makes Capabilities report ReadLogs true. Nil (the default) leaves
	// docker logs to Docker's own local cache.
	ReadLogs http.Handler
	// AllowedEndpoints restricts the endpoint log-opt (plugin setting
	// ALLOWED_ENDPOINTS). The zero value allows any endpoint.
	AllowedEndpoints logopt.EndpointPolicy
	// JournalLimit is how many bytes of a stream's FIFO its journal may
	// hold before they are stored in a segment. Zero means
	// DefaultJournalLimit; negative turns journals off (streams read
	// their FIFO directly).
	JournalLimit int64
}

// Driver serves the logging-driver protocol. Its methods are safe for
// concurrent use. Each stream's reader goroutine is started by StartLogging or
// Reattach and ends at the FIFO's EOF or at Shutdown; Shutdown waits for all.
type Driver struct {
	cfg Config
	log *slog.Logger

	// mu guards streams and shut.
	mu      sync.Mutex
	streams map[string]*stream // by FIFO path
	shut    bool

	wg sync.WaitGroup // one per reader goroutine and re-attach retry

	// counts are added to by the streams; Stats reads them.
	counts sharedCounts

	// devNull takes the bytes a stream consumes from its FIFO (splice);
	// nil when /dev/null cannot be opened. Open for the Driver's life.
	devNull *os.File
	// stop is closed by Shutdown; re-attach retries watch it.
	stop chan struct{}
	// openFIFO opens a FIFO for reading; tests replace it to inject
	// failures.
	openFIFO func(path string) (*os.File, error)
}

// openFIFO opens a FIFO read-only and non-blocking.
func openFIFO(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// New returns a Driver. It creates StateDir.
func New(cfg Config) (*Driver, error) {
	if cfg.Spool == nil || cfg.Uploader == nil || cfg.StateDir == "" {
		return nil, errors.New("driver: Config needs Spool, Uploader and StateDir")
	}
	if cfg.FIFODir == "" {
		cfg.FIFODir = DefaultFIFODir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("driver: create state folder: %w", err)
	}
	if err := syncDir(filepath.Dir(cfg.StateDir)); err != nil {
		return nil, fmt.Errorf("driver: create state folder: %w", err)
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, streams: make(map[string]*stream), stop: make(chan struct{}), openFIFO: openFIFO}
	if f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		d.devNull = f
	} else {
		d.log.Warn("cannot open /dev/null; stored FIFO bytes are consumed with read(2)", "err", err)
	}
	return d, nil
}

// StartLogging validates the log-opts, opens the FIFO, saves the stream for
// Reattach and starts its reader goroutine. An error is what the user sees
// at `docker run`.
func (d *Driver) StartLogging(file string, info Info) error {
	if file == "" {
		return ErrMissingFile
	}
	if err := d.checkFile(file); err != nil {
		return err
	}
	opts, err := logopt.Parse(info.Config)
	if err != nil {
		return err
	}
	if err := d.cfg.AllowedEndpoints.Check(opts); err != nil {
		return err
	}
	saved := savedStream{
		File:          file,
		Config:        info.Config,
		ContainerID:   info.ContainerID,
		ContainerName: info.ContainerName,
		ImageName:     info.ContainerImageName,
		ImageID:       info.ContainerImageID,
		DaemonName:    info.DaemonName,
		Attrs:         opts.Attrs(info.ContainerLabels, info.ContainerEnv),
	}
	return d.start(saved, opts, true, nil)
}

// checkFile accepts only FIFOs directly inside FIFODir.
func (d *Driver) checkFile(file string) error {
	if !filepath.IsAbs(file) || filepath.Clean(file) != file || filepath.Dir(file) != d.cfg.FIFODir {
		return fmt.Errorf("%w: %q: want a FIFO directly inside %s", ErrBadFile, file, d.cfg.FIFODir)
	}
	return nil
}

// start registers a stream, opens its FIFO, persists it (at StartLogging)
// and starts its reader. tail, for a re-attached stream, is the end of
// what the repaired segment stored, for deduplication.
func (d *Driver) start(saved savedStream, opts *logopt.Options, persist bool, tail [][]byte) error {
	d.mu.Lock()
	if d.shut {
		d.mu.Unlock()
		return ErrShutdown
	}
	if _, ok := d.streams[saved.File]; ok {
		d.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrDuplicate, saved.File)
	}
	// Reserve the path before unlocking so a concurrent duplicate fails.
	d.streams[saved.File] = nil
	d.mu.Unlock()

	s, err := d.newStream(saved, opts, persist)
	d.mu.Lock()
	if err == nil && d.shut {
		// Shutdown began while the stream was being opened: it must not
		// start after Shutdown collected the streams to wait for.
		s.fifo.Close()
		if c, ok := s.src.(io.Closer); ok {
			c.Close()
		}
		s.w.Close(segment.ReasonShutdown)
		err = ErrShutdown
	}
	if err == nil {
		s.reattached = !persist
		if s.reattached {
			d.counts.reattached.Add(1)
		}
		if len(tail) > 0 {
			s.dedup = &deduper{tail: tail}
		}
	}
	if err != nil {
		delete(d.streams, saved.File)
		d.mu.Unlock()
		return err
	}
	d.streams[saved.File] = s
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		s.run()
		d.mu.Lock()
		delete(d.streams, saved.File)
		d.mu.Unlock()
	}()
	return nil
}

// newStream opens the FIFO and the segment writer of a stream.
func (d *Driver) newStream(saved savedStream, opts *logopt.Options, persist bool) (*stream, error) {
	attrs, err := marshalAttrs(saved.Attrs)
	if err != nil {
		return nil, err
	}
	if persist {
		if err := d.save(saved); err != nil {
			return nil, err
		}
	}
	// O_NONBLOCK puts the FIFO under Go's poller: reads park the goroutine
	// and Close interrupts them. Docker holds the FIFO open read-write, so a
	// read sees EOF only once Docker has closed it and the pipe is drained.
	jpath := d.journalPath(saved.File)
	f, err := d.openFIFO(saved.File)
	switch {
	case err == nil:
		growPipe(f)
	case !persist && errors.Is(err, os.ErrNotExist) && journalPending(jpath):
		// The container stopped while no process read its FIFO, but the
		// journal still holds bytes to store: it is all that is left.
		f = nil
	default:
		if persist {
			d.forget(saved.File)
		}
		return nil, fmt.Errorf("%w: %w", errOpenFIFO, err)
	}
	cid := saved.ContainerID
	st := &stream{
		file:      saved.File,
		container: cid,
		started:   time.Now(),
		fifo:      f,
		attrs:     attrs,
		log:       d.log.With("container", shortID(cid), "name", strings.TrimPrefix(saved.ContainerName, "/")),
		forget:    func() { d.forget(saved.File) },
		sink:      &d.counts,
	}
	var direct frameSource
	if f != nil {
		if ps, err := newPeekSource(f, d.devNull); err == nil {
			direct = ps
			st.holdMax = min(holdLimit, int64(ps.size/4))
		} else {
			st.log.Warn("FIFO cannot be read without consuming it; a crash may lose the bytes of one read", "file", saved.File, "err", err)
			direct = &plainSource{r: f, f: f}
		}
	}
	if d.cfg.JournalLimit < 0 && f != nil && (persist || !journalPending(jpath)) {
		// Journals are off. (A journal an earlier run left with bytes to
		// store is still read, then used for the rest of that stream.)
		st.src = direct
	} else {
		js, err := openJournal(jpath, f, persist, journalOptions{
			limit:  max(d.cfg.JournalLimit, 0),
			space:  d.cfg.Spool,
			direct: direct,
			onDrop: func(n int64) { d.counts.skippedBytes.Add(uint64(n)) },
			onError: func(err error) {
				st.log.Error("cannot write the stream's journal; discarding FIFO bytes so the container never blocks", "file", saved.File, "err", err)
			},
		})
		switch {
		case err == nil:
			st.src = js
			if p := js.Pending(); p > 0 {
				st.log.Info("resuming the stream's journal", "file", saved.File, "pending_bytes", p)
			}
		case f == nil:
			return nil, fmt.Errorf("%w: %w", errOpenFIFO, err)
		default:
			st.log.Warn("cannot open the stream's journal; reading the FIFO directly, so a burst waits for compression", "file", saved.File, "err", err)
			st.src = direct
		}
	}
	if opts == nil {
		return st, nil // read and counted, not stored (see savedOptions)
	}
	kinfo := keys.Info{
		ContainerID:   saved.ContainerID,
		ContainerName: saved.ContainerName,
		ImageName:     saved.ImageName,
		ImageID:       saved.ImageID,
		DaemonName:    saved.DaemonName,
		Hostname:      d.cfg.Hostname,
	}
	prefix := opts.Prefix
	w, err := d.cfg.Spool.NewWriter(segment.WriterOptions{
		Container: segment.Container{ID: cid, Name: saved.ContainerName, ImageName: saved.ImageName, ImageID: saved.ImageID},
		Destination: segment.Destination{
			Bucket:         opts.Bucket,
			Region:         opts.Region, // "": the uploader's S3 client resolves it
			Endpoint:       opts.Endpoint,
			ForcePathStyle: opts.ForcePathStyle,
			StorageClass:   opts.StorageClass,
			SSE:            opts.SSE,
			SSEKMSKeyID:    opts.SSEKMSKeyID,
		},
		MaxSize: opts.SegmentSize,
		MaxAge:  opts.SegmentAge,
		Level:   opts.CompressionLevel,
		Key: func(first time.Time, seq uint64) string {
			return keys.Key(prefix.Render(kinfo, first), keys.FilePart(first, cid, seq))
		},
		OnSeal: func(s segment.Sealed) {
			d.log.Debug("segment sealed", "container", shortID(cid), "key", s.Meta.Key,
				"records", s.Meta.Records, "bytes", s.Meta.CompressedBytes, "reason", s.Meta.Reason)
			st.seals.Add(1)
			d.cfg.Uploader.Enqueue(s, s.Meta.Reason == segment.ReasonStop)
		},
	})
	if err != nil {
		if c, ok := st.src.(io.Closer); ok {
			c.Close()
		}
		f.Close()
		if persist {
			d.forget(saved.File)
		}
		return nil, err
	}
	st.w = w
	return st, nil
}

// StopLogging tells the Driver that Docker is done with a FIFO. It never
// fails and never waits: the stream's reader reads on to EOF by itself.
func (d *Driver) StopLogging(file string) {
	d.mu.Lock()
	s := d.streams[file]
	d.mu.Unlock()
	if s == nil {
		d.log.Debug("StopLogging for an unknown FIFO", "file", file)
		return
	}
	s.stopRequested.Store(true)
	args := []any{"file", file}
	if j, ok := s.src.(*journalSource); ok {
		// What the stream still has to store: a burst it yielded to, or
		// how far compression fell behind.
		args = append(args, "journal_pending_bytes", j.Pending())
	}
	s.log.Debug("StopLogging: reading on to EOF", args...)
}

// Shutdown stops accepting streams and ends every stream at a frame
// boundary, sealing its segment: a stream whose container stopped
// (StopLogging arrived, or its FIFO is already deleted) first reads on to
// EOF, since Docker has let go of its pipe and nothing read later would
// survive; the others end at once and what they did not store stays in
// their FIFO for the next start's Reattach. When ctx ends first, the streams
// still reading are cut too. Shutdown returns once every stream ended.
// Saved streams of interrupted streams are kept.
func (d *Driver) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if !d.shut {
		d.shut = true
		close(d.stop)
	}
	var ss []*stream
	for _, s := range d.streams {
		if s != nil {
			ss = append(ss, s)
		}
	}
	d.mu.Unlock()
	reading := 0
	for _, s := range ss {
		if s.stopRequested.Load() || fifoGone(s.file) {
			reading++
			continue
		}
		s.interrupt()
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	cut := 0
	for _, s := range ss {
		if !s.interrupted.Load() {
			cut++
			s.interrupt()
		}
	}
	<-done
	return fmt.Errorf("driver: shutdown: %d stream(s) of stopped containers had not reached EOF and were cut: %w", cut, ctx.Err())
}

// fifoGone reports whether a FIFO was deleted (Docker deletes it after
// StopLogging).
func fifoGone(file string) bool {
	_, err := os.Stat(file)
	return errors.Is(err, os.ErrNotExist)
}

// Streams returns the number of live streams.
func (d *Driver) Streams() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.streams)
}

// statePath names a stream's saved file after a hash of its FIFO path.
func (d *Driver) statePath(file string) string {
	h := sha256.Sum256([]byte(file))
	return filepath.Join(d.cfg.StateDir, hex.EncodeToString(h[:16])+".json")
}

// journalPath names a stream's journal after a hash of its FIFO path, next
// to its saved file.
func (d *Driver) journalPath(file string) string {
	return strings.TrimSuffix(d.statePath(file), ".json") + ".journal"
}

// save persists a stream for Reattach, durably.
func (d *Driver) save(s savedStream) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("driver: save stream: %w", err)
	}
	path := d.statePath(s.File)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("driver: save stream: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		// The rename must survive a power loss too, or the stream could
		// not be re-attached after it.
		err = syncDir(d.cfg.StateDir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("driver: save stream: %w", err)
	}
	return nil
}

// syncDir fsyncs a folder, so the entries created or renamed in it are
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// forget removes a stream's saved file and its journal, if any.
func (d *Driver) forget(file string) {
	for _, p := range []string{d.statePath(file), d.journalPath(file)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("cannot remove saved stream", "file", p, "err", err)
		}
	}
}

// pipeSize is the FIFO capacity s3logs asks for: 1 MiB (Linux's default
// pipe-max-size) instead of 64 KiB, so a container can keep writing through
// a short stall of the reader, such as the fsync when a segment is sealed.
const pipeSize = 1 << 20

// fcntl commands missing from package syscall.
const (
	fSetPipeSz = 1031 // F_SETPIPE_SZ
	fGetPipeSz = 1032 // F_GETPIPE_SZ
)

// growPipe enlarges a FIFO's buffer (F_SETPIPE_SZ); failure is harmless. It
// goes through SyscallConn because File.Fd would switch the FIFO back to
// blocking mode and take it out of Go's poller.
func growPipe(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize)
		})
	}
}

// shortID is the 12-character form of a container id used in logs.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
