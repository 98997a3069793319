package segment

import (
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// WriterOptions configure one stream's Writer.
type WriterOptions struct {
	Container   Container
	Destination Destination
	// MaxSize seals a segment once its compressed file reaches this many
	// bytes. Input is flushed early when its estimated compressed size would
	// reach the limit, so a file exceeds it by about one record plus the
	// frame end (at worst one 128 KiB block when the estimate is far off).
	// Default DefaultMaxSize.
	MaxSize int64
	// MaxAge seals a segment this long after its first record arrived, even
	// when no further record comes. Default DefaultMaxAge.
	MaxAge time.Duration
	// Level is the zstd level. The zero value is zstd.SpeedDefault.
	Level zstd.EncoderLevel
	// Key renders the object key of a new segment from its first record's
	// time and its sequence number. Required. It is called once per segment
	// and the result is stored in the sidecar, so the key never changes.
	Key func(first time.Time, seq uint64) string
	// OnSeal is called with each segment this Writer seals, after its files
	// are durable, from the goroutine that sealed it (Append, Close or the
	// Spool's ticker) and without the Writer's lock held. It must not block.
	OnSeal func(Sealed)
}

// Writer appends records of one stream to that stream's current segment,
// rotating by size and age.
//
// Append, Flush and Close may be called from different goroutines; they
// serialize on the Writer's mutex. The Spool's ticker takes the same mutex to
// flush, release the encoder of an idle Writer and seal aged segments.
type Writer struct {
	s    *Spool
	opts WriterOptions
	dir  *containerDir

	// mu guards cur and closed.
	mu     sync.Mutex
	cur    *openSegment
	closed bool
}

// openSegment is the segment a Writer appends to.
type openSegment struct {
	f      *os.File
	cw     *countingWriter
	enc    *zstd.Encoder // nil while the stream is idle (between frames)
	meta   Meta
	name   string    // final data file name
	opened time.Time // spool clock at open, for MaxAge
	// lastAppend is the spool clock at the last Append; dirtySince at the
	// first Append after the last flush, zero when nothing is unflushed.
	lastAppend time.Time
	dirtySince time.Time
	// pendingRaw counts input bytes appended since the last flush; some may
	// already be in the file if the encoder wrote a full block.
	pendingRaw int64
}

// PartSize is the size of the parts whose MD5s a segment's sidecar lists
// (Meta.PartMD5s), for an upload in parts (S3 multipart) that needs no
// extra read of the file.
const PartSize = 16 << 20

// PartSumsAbove: a Writer whose MaxSize is larger than this hashes each
// PartSize part as well as the whole file. Smaller segments, the default
// 64 MiB among them, can never reach the uploader's multipart threshold
// (128 MiB), so their bytes are hashed once.
const PartSumsAbove = 64 << 20

// writebackEvery is how many segment bytes a countingWriter writes between
// two starts of their writeback.
const writebackEvery = 1 << 20

// countingWriter counts the bytes written to the segment file, reports
// them to the janitor (jan may be nil) and hashes them: the MD5 of the
// whole file and of each PartSize part (for the upload's Content-MD5, so
// the uploader need not read the file for it).
//
// Every writebackEvery bytes it starts the kernel's writeback of what it
// wrote (without waiting), so that a segment never holds much dirty page
// cache: the seal's fsync(2) then finds little left to write, and neither
// does the syncfs(2) that Docker's unmount of any container's rootfs
// waits for when the spool shares the filesystem.
//
// With an encoder that compresses on its own goroutine, Write runs there
// (never two at once) while the Writer reads size: n is atomic.
type countingWriter struct {
	f  *os.File
	n  atomic.Int64
	wb int64 // the offset up to which writeback was started
	// writeback starts it (startWriteback; nil: never; tests record the
	// calls).
	writeback func(f *os.File, off, n int64)
	jan       *janitor
	md5       hash.Hash // nil: not hashed
	// part hashes the current part; parts are the finished parts' sums.
	part  hash.Hash
	parts []string
}

func newCountingWriter(f *os.File, jan *janitor, partSums bool) *countingWriter {
	c := &countingWriter{f: f, jan: jan, md5: md5.New(), writeback: startWriteback}
	if partSums {
		c.part = md5.New()
	}
	return c
}

// size returns the bytes written so far.
func (c *countingWriter) size() int64 { return c.n.Load() }

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	if c.md5 != nil {
		c.md5.Write(p[:n])
	}
	if c.part != nil {
		pos := c.n.Load()
		done := p[:n]
		for len(done) > 0 {
			room := PartSize - pos%PartSize
			k := min(int64(len(done)), room)
			c.part.Write(done[:k])
			pos += k
			done = done[k:]
			if pos%PartSize == 0 {
				c.parts = append(c.parts, base64.StdEncoding.EncodeToString(c.part.Sum(nil)))
				c.part.Reset()
			}
		}
	}
	end := c.n.Add(int64(n))
	if end-c.wb >= writebackEvery && c.writeback != nil {
		c.writeback(c.f, c.wb, end-c.wb)
		c.wb = end
	}
	if c.jan != nil {
		c.jan.wrote(int64(n))
	}
	return n, err
}

// seal stores the sums in m: ContentMD5, and the part sums when the file
// is larger than one part.
func (c *countingWriter) seal(m *Meta) {
	if c.md5 == nil {
		return
	}
	m.ContentMD5 = base64.StdEncoding.EncodeToString(c.md5.Sum(nil))
	m.PartSize, m.PartMD5s = 0, nil
	if n := c.n.Load(); c.part != nil && n > PartSize {
		parts := c.parts
		if n%PartSize != 0 {
			parts = append(parts, base64.StdEncoding.EncodeToString(c.part.Sum(nil)))
		}
		m.PartSize, m.PartMD5s = PartSize, parts
	}
}

// NewWriter returns a Writer for one stream of a container. Several Writers
// may share a container (Docker can open a second stream for it); sequence
// numbers stay unique. No file is created before the first Append.
func (s *Spool) NewWriter(opts WriterOptions) (*Writer, error) {
	if opts.Key == nil {
		return nil, errors.New("segment: WriterOptions.Key is nil")
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Level == 0 {
		opts.Level = zstd.SpeedDefault
	}
	d, err := s.acquireDir(opts.Container.ID)
	if err != nil {
		return nil, err
	}
	w := &Writer{s: s, opts: opts, dir: d}
	s.register(w)
	return w, nil
}

// Append adds one record to the current segment, opening a segment first if
// there is none. rec must be one complete line ending in '\n' (the JSON line
// of a log record) of at most MaxRecordLen bytes; t is its timestamp. rec is
// not retained.
// The record is in memory until the next Flush, until the encoder's block
// fills (128 KiB), or at most the Spool's flush interval.
//
// Under PolicyBlock, Append waits while the spool is full. A write error
// (such as ENOSPC) abandons the current segment to the janitor, which
// repairs and seals what it holds once there is room and logs how many of
// its accepted records (this one included) were lost; the error then wraps
// ErrAbandoned. Any other error means the record was not accepted. The next
// Append starts a new segment.
func (w *Writer) Append(t time.Time, rec []byte) error {
	w.s.gate.wait()
	sealed, err := w.append(t, rec)
	if sealed != nil && w.opts.OnSeal != nil {
		w.opts.OnSeal(*sealed)
	}
	return err
}

func (w *Writer) append(t time.Time, rec []byte) (*Sealed, error) {
	if len(rec) > MaxRecordLen {
		return nil, fmt.Errorf("segment: record of %d bytes exceeds MaxRecordLen (%d)", len(rec), MaxRecordLen)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	now := w.s.now()
	if w.cur == nil {
		if err := w.openLocked(t, now); err != nil {
			return nil, err
		}
	}
	c := w.cur
	if c.enc == nil {
		enc, err := w.s.enc.get(w.opts.Level, c.cw)
		if err != nil {
			return nil, err
		}
		c.enc = enc
	}
	// Counted before the write: a failed write abandons the segment with
	// this record among those it accepted, which the janitor accounts for.
	c.meta.Records++
	c.meta.RawBytes += int64(len(rec))
	c.pendingRaw += int64(len(rec))
	if _, err := c.enc.Write(rec); err != nil {
		return nil, w.abandonLocked(fmt.Errorf("segment: append to %s: %w", c.f.Name(), err))
	}
	if t.After(c.meta.LastTime) {
		c.meta.LastTime = t
	}
	c.lastAppend = now
	if c.dirtySince.IsZero() {
		c.dirtySince = now
	}
	if c.cw.size()+c.pendingCompressed() >= w.opts.MaxSize {
		// The buffered input may take the file over the limit: write it
		// out now so the size check below sees the real size.
		if err := w.flushLocked(); err != nil {
			return nil, err
		}
	}
	return w.sealIfFullLocked()
}

// pendingCompressed estimates the compressed size of the input not yet
// flushed, at the segment's ratio so far (1:1 before anything is written),
// so a segment overshoots MaxSize by about one record rather than a block.
func (c *openSegment) pendingCompressed() int64 {
	flushed := c.meta.RawBytes - c.pendingRaw
	n := c.cw.size()
	if n == 0 || flushed <= 0 {
		return c.pendingRaw
	}
	return c.pendingRaw * n / flushed
}

// sealIfFullLocked seals the current segment when its file reached MaxSize.
func (w *Writer) sealIfFullLocked() (*Sealed, error) {
	if w.cur == nil || w.cur.cw.size() < w.opts.MaxSize {
		return nil, nil
	}
	s, err := w.sealLocked(ReasonSize)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// Flush writes everything appended so far to the file with write(2), ending
// the current zstd block. Call it whenever the source has nothing more to
// read at once, so a crash loses at most what was read since.
// A segment that reaches MaxSize with this write is sealed.
func (w *Writer) Flush() error {
	w.mu.Lock()
	err := w.flushLocked()
	var sealed *Sealed
	if err == nil {
		sealed, err = w.sealIfFullLocked()
	}
	w.mu.Unlock()
	if sealed != nil && w.opts.OnSeal != nil {
		w.opts.OnSeal(*sealed)
	}
	return err
}

func (w *Writer) flushLocked() error {
	c := w.cur
	if c == nil || c.enc == nil || c.dirtySince.IsZero() {
		return nil
	}
	c.dirtySince = time.Time{}
	c.pendingRaw = 0
	if err := c.enc.Flush(); err != nil {
		return w.abandonLocked(fmt.Errorf("segment: flush %s: %w", c.f.Name(), err))
	}
	return nil
}

// abandonLocked gives up the current segment after a write error: its
// encoder is discarded (its state is lost), the file is closed as it is and
// handed to the janitor, which repairs it and logs how many of the records
// it had accepted were lost. It returns err wrapped with ErrAbandoned.
func (w *Writer) abandonLocked(err error) error {
	c := w.cur
	if c == nil {
		return err
	}
	w.cur = nil
	c.f.Close()
	w.s.jan.abandon(abandonedFile{dir: w.dir.path, name: c.name, container: w.opts.Container.ID, appended: c.meta.Records})
	return fmt.Errorf("%w: %w", ErrAbandoned, err)
}

// Close seals the current segment (if any record was appended since the last
// one was sealed) with the given reason and releases the Writer. Later calls
// return ErrClosed from Append; Close itself is idempotent.
func (w *Writer) Close(reason string) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	var sealed *Sealed
	var err error
	if w.cur != nil {
		var s Sealed
		s, err = w.sealLocked(reason)
		if err == nil {
			sealed = &s
		}
	}
	w.mu.Unlock()

	w.s.unregister(w)
	if sealed != nil && w.opts.OnSeal != nil {
		w.opts.OnSeal(*sealed)
	}
	return err
}

// tick is the ticker's visit: flush stale data, end the frame of an idle
// stream (releasing its encoder) and seal an aged segment.
func (w *Writer) tick(now time.Time) {
	w.mu.Lock()
	c := w.cur
	if w.closed || c == nil {
		w.mu.Unlock()
		return
	}
	var sealed *Sealed
	var err error
	switch {
	case now.Sub(c.opened) >= w.opts.MaxAge:
		var s Sealed
		if s, err = w.sealLocked(ReasonAge); err == nil {
			sealed = &s
		}
	case c.enc != nil && now.Sub(c.lastAppend) >= w.s.flush:
		if err = w.endFrameLocked(); err == nil {
			sealed, err = w.sealIfFullLocked()
		}
	case !c.dirtySince.IsZero() && now.Sub(c.dirtySince) >= w.s.flush:
		if err = w.flushLocked(); err == nil {
			sealed, err = w.sealIfFullLocked()
		}
	}
	w.mu.Unlock()
	if err != nil {
		w.s.log.Error("segment maintenance failed", "container", w.opts.Container.ID, "err", err)
	}
	if sealed != nil && w.opts.OnSeal != nil {
		w.opts.OnSeal(*sealed)
	}
}

// endFrameLocked finishes the current zstd frame and returns the encoder to
// the pool; the next Append starts a new frame in the same file.
func (w *Writer) endFrameLocked() error {
	c := w.cur
	if c.enc == nil {
		return nil
	}
	err := c.enc.Close()
	w.s.enc.put(w.opts.Level, c.enc)
	c.enc = nil
	c.dirtySince = time.Time{}
	c.pendingRaw = 0
	if err != nil {
		return w.abandonLocked(fmt.Errorf("segment: end frame of %s: %w", c.f.Name(), err))
	}
	return nil
}

// openLocked starts a new segment: allocates its sequence number, creates the
// in-progress file and writes its sidecar.
func (w *Writer) openLocked(first, now time.Time) error {
	seq, err := w.s.seq.alloc()
	if err != nil {
		return err
	}
	name := fileName(seq)
	f, err := os.OpenFile(filepath.Join(w.dir.path, name+PartialSuffix), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	m := Meta{
		Version:     MetaVersion,
		Key:         w.opts.Key(first, seq),
		Destination: w.opts.Destination,
		Container:   w.opts.Container,
		Seq:         seq,
		FirstTime:   first,
		LastTime:    first,
	}
	if _, err := writeMeta(filepath.Join(w.dir.path, name+MetaSuffix), &m); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := syncDir(w.dir.path); err != nil {
		f.Close()
		return err
	}
	w.cur = &openSegment{f: f, cw: newCountingWriter(f, &w.s.jan, w.opts.MaxSize > PartSumsAbove), meta: m, name: name, opened: now}
	return nil
}

// sealLocked finishes the current segment: ends the zstd frame, fsyncs the
// file, rewrites the sidecar with the final counts, renames the file to its
// final name and fsyncs the folder. The Writer has no segment afterwards,
// even on error; a file left in progress is repaired by Recover at the next
// start.
func (w *Writer) sealLocked(reason string) (Sealed, error) {
	c := w.cur
	w.cur = nil
	var errs []error
	if c.enc != nil {
		if err := c.enc.Close(); err != nil {
			errs = append(errs, err)
		}
		w.s.enc.put(w.opts.Level, c.enc)
		c.enc = nil
	}
	if err := c.f.Sync(); err != nil {
		errs = append(errs, err)
	}
	if err := c.f.Close(); err != nil {
		errs = append(errs, err)
	}
	ab := abandonedFile{dir: w.dir.path, name: c.name, container: w.opts.Container.ID, appended: c.meta.Records}
	if err := errors.Join(errs...); err != nil {
		w.s.jan.abandon(ab)
		return Sealed{}, fmt.Errorf("%w: seal %s: %w", ErrAbandoned, c.f.Name(), err)
	}
	c.cw.seal(&c.meta)
	s, err := finishSeal(&w.s.acct, w.dir.path, c.name, c.f.Name(), c.meta, c.cw.size(), reason, w.s.now())
	if err != nil {
		w.s.jan.abandon(ab)
		return Sealed{}, fmt.Errorf("%w: %w", ErrAbandoned, err)
	}
	return s, nil
}

// finishSeal writes the final sidecar and renames the data file from its
// temporary path to its final name (the data file is already synced),
// syncs the folder, and adds the segment to the ledger acct.
func finishSeal(acct *ledger, dir, name, tmpPath string, m Meta, size int64, reason string, now time.Time) (Sealed, error) {
	m.CompressedBytes = size
	m.Reason = reason
	m.SealedAt = now.UTC()
	metaSize, err := writeMeta(filepath.Join(dir, name+MetaSuffix), &m)
	if err != nil {
		return Sealed{}, err
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(tmpPath, path); err != nil {
		return Sealed{}, fmt.Errorf("segment: seal: %w", err)
	}
	acct.add(dir, path, size+metaSize, m.SealedAt, reason)
	if err := syncDir(dir); err != nil {
		return Sealed{}, err
	}
	return Sealed{Dir: dir, Name: name, Meta: m, acct: acct}, nil
}
