package driver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The journal file: a header (magic, then the count of data bytes already
// stored in segments, little-endian), then the FIFO's bytes in order.
const (
	journalHeader = 16
	journalMagic  = "s3logsj1"
)

// Journal bounds.
const (
	// DefaultJournalLimit is how many FIFO bytes a stream's journal may
	// hold that its segment writer has not yet stored: a burst up to this
	// size leaves the container's pipe at the speed of a disk write, and
	// only a longer one makes the container wait for compression.
	DefaultJournalLimit = 256 << 20
	// journalEmptyAt: a journal whose bytes are all stored is emptied
	// (truncated) once it holds this many.
	journalEmptyAt = 4 << 20
	// pumpChunk is the most one splice(2) moves.
	pumpChunk = 1 << 20
	// pumpBatch and pumpPause: after moving less than pumpBatch, the pump
	// waits pumpPause before the next splice(2), so that a container
	// writing line by line at full speed (Docker writes each line to the
	// pipe with its own write(2)) costs a splice, a wake-up of the pump
	// and one of the stream per pumpPause rather than per line. At
	// 500 MB/s, 1 MiB of pipe lasts 2 ms.
	pumpBatch = 256 << 10
	pumpPause = 2 * time.Millisecond
	// journalFreeEvery: a stream catching up on its journal gives the
	// blocks of the bytes it stored back to the filesystem (punches a hole
	// at the journal's front) once this many gathered, so that a long
	// burst holds on disk and in the page cache only what is not stored
	// yet. Stored bytes are never written back by the kernel: dirty pages
	// of a file on the host's filesystem would otherwise be flushed by the
	// next syncfs(2), which Docker's unmount of any container's rootfs
	// waits for (200 MB of them made every docker stop on the host 0.1 s
	// slower).
	journalFreeEvery = 4 << 20
	// journalBlock: holes are punched in whole blocks of this size; the
	// first one, which holds the header, is never punched.
	journalBlock = 4096
	// yieldQuiet, yieldMax and yieldPoll: a stream leaves a burst in its
	// journal while the container is writing it (the pump moved bytes
	// within yieldQuiet), for at most yieldMax from the moment it began to
	// (until it next catches up), looking again every yieldPoll. See
	// yielding.
	yieldQuiet = 20 * time.Millisecond
	yieldMax   = 2 * time.Second
	yieldPoll  = 10 * time.Millisecond
	// journalMinRoom: with less room than this on the spool, journals
	// count as out of room, so a stream does not switch between its
	// journal and its FIFO for every few bytes.
	journalMinRoom = 1 << 20
)

// journalSource is a frameSource that takes the FIFO's bytes off Docker's
// pipe at once, into a per-stream file in the spool, and delivers them to
// the stream from there: a container never waits for its records to be
// encoded and compressed unless a burst outgrows the journal's limit.
//
// Its pump goroutine moves bytes from the FIFO to the end of the file with
// splice(2), so they are never copied through user space and are in the
// file before they leave the pipe: a crash at any moment leaves every byte
// either in the pipe or in the journal. The stream reads the journal with
// pread(2) and commits what it stored; the header records how much is
// committed, so a restarted process resumes at the first byte not yet
// stored (and deduplicates the records the repaired segment holds beyond
// it, as after a FIFO re-attach). Stored bytes give their blocks back to
// the filesystem every journalFreeEvery (a hole at the file's front), once
// everything is committed the file is emptied, and at the stream's EOF it
// is removed.
//
// The pump starts in openJournal and ends at the FIFO's EOF, at Interrupt
// or at Close, which waits for it. Read, Commit, Uncommitted and Release
// are for the stream's reader goroutine only; Interrupt is safe from any
// goroutine.
type journalSource struct {
	f     *os.File
	fd    int
	fifo  *os.File        // nil when the FIFO is gone: the journal is all
	rc    syscall.RawConn // fifo's
	limit int64
	// onDrop is told about FIFO bytes the pump could not write to the
	// journal (say the disk is full) and discarded so the container
	// never blocks; onError about the first error of such a spell.
	onDrop  func(n int64)
	onError func(err error)
	// space, when set, returns how many more bytes the journal may take
	// on the spool's disk, and grew is told about every change of its
	// size (JournalSpace).
	space JournalSpace
	// direct reads the FIFO itself, for when space has no room: the
	// stream then goes on as without a journal. Nil without a FIFO, or
	// when no direct source could be made.
	direct frameSource

	// mu guards written, committed, eof and bypass. committed and bypass
	// change only in the reader goroutine, which may read them without mu.
	mu        sync.Mutex
	written   int64 // data bytes in the file
	committed int64 // data bytes stored by the stream (persisted in the header)
	eof       bool  // the pump saw the FIFO's EOF, or there is no FIFO
	// bypass: the spool had no room, the journal is empty and the stream
	// reads the FIFO through direct; the pump waits.
	bypass bool

	readOff int64 // data bytes delivered to the stream
	// holeEnd is the file offset up to which stored bytes' blocks were
	// given back (0: none); noHoles is set once the filesystem refused.
	// Reader goroutine only (and openJournal).
	holeEnd int64
	noHoles bool
	// lastPump is when the pump last moved bytes (Unix nanoseconds).
	lastPump atomic.Int64
	// yieldSince is when the stream began leaving a burst in the journal
	// (zero: it is not); yieldFor bounds it (yieldMax), and quiet is how
	// long the pump must have moved nothing for the burst to count as
	// over (yieldQuiet). Reader goroutine.
	yieldSince time.Time
	yieldFor   time.Duration
	quiet      time.Duration

	more        chan struct{} // cap 1: the pump wrote bytes or ended
	room        chan struct{} // cap 1: the stream committed bytes
	stop        chan struct{} // closed by Interrupt and Close
	stopOnce    sync.Once
	interrupted atomic.Bool
	pumpDone    chan struct{}
	idle        *time.Timer
	hdr         [journalHeader]byte
	scratch     []byte // the pump's buffer for discarding
}

// JournalSpace is what the journals ask of the spool's disk
// (segment.Spool implements it). Its methods are called from the pump
// goroutines and must be safe for concurrent use.
type JournalSpace interface {
	// JournalRoom returns how many more bytes journals may take now.
	JournalRoom() int64
	// JournalGrew counts bytes journals took (n > 0) or gave back.
	JournalGrew(n int64)
}

// journalOptions are openJournal's optional parts.
type journalOptions struct {
	limit   int64 // <= 0: DefaultJournalLimit
	space   JournalSpace
	direct  frameSource
	onDrop  func(n int64)
	onError func(err error)
	// yieldFor: how long a stream may leave a burst in its journal; 0
	// means yieldMax, < 0 never. quiet: <= 0 means yieldQuiet.
	yieldFor time.Duration
	quiet    time.Duration
}

// openJournal opens (creating it if needed) the journal at path and starts
// its pump from fifo; a nil fifo means the FIFO is gone and the journal
// holds all that is left. fresh empties a journal left by an earlier
// stream instead of resuming it.
func openJournal(path string, fifo *os.File, fresh bool, o journalOptions) (*journalSource, error) {
	limit := o.limit
	if limit <= 0 {
		limit = DefaultJournalLimit
	}
	if o.yieldFor == 0 {
		o.yieldFor = yieldMax
	}
	if o.quiet <= 0 {
		o.quiet = yieldQuiet
	}
	flags := os.O_RDWR | os.O_CREATE
	if fresh {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("driver: journal: %w", err)
	}
	j := &journalSource{f: f, fd: int(f.Fd()), fifo: fifo, limit: limit, onDrop: o.onDrop, onError: o.onError,
		space: o.space, direct: o.direct, yieldFor: o.yieldFor, quiet: o.quiet,
		more: make(chan struct{}, 1), room: make(chan struct{}, 1), stop: make(chan struct{}), pumpDone: make(chan struct{})}
	if err := j.load(); err != nil {
		f.Close()
		return nil, err
	}
	j.grew(j.written)
	j.free()
	if fifo == nil {
		j.direct = nil
		j.eof = true
		close(j.pumpDone)
		return j, nil
	}
	if j.rc, err = fifo.SyscallConn(); err != nil {
		f.Close()
		return nil, fmt.Errorf("driver: journal: %w", err)
	}
	go j.pump()
	return j, nil
}

// load reads the header of an existing journal, or writes one.
func (j *journalSource) load() error {
	written, committed, err := readJournalHeader(j.f)
	switch {
	case errors.Is(err, errNoJournalHeader):
		return j.reset()
	case err != nil:
		return err
	}
	copy(j.hdr[:8], journalMagic)
	j.written, j.committed, j.readOff = written, committed, committed
	return nil
}

// errNoJournalHeader: the file is shorter than a journal's header (new).
var errNoJournalHeader = errors.New("driver: journal has no header")

// readJournalHeader returns how many data bytes a journal file holds and
// how many of them are stored. A commit larger than the data means the file
// was emptied before its header was rewritten: nothing is left.
func readJournalHeader(f *os.File) (written, committed int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("driver: journal: %w", err)
	}
	if fi.Size() < journalHeader {
		return 0, 0, errNoJournalHeader
	}
	var hdr [journalHeader]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, 0, fmt.Errorf("driver: journal %s: read header: %w", f.Name(), err)
	}
	if string(hdr[:8]) != journalMagic {
		return 0, 0, fmt.Errorf("driver: journal %s: not a journal (header %q)", f.Name(), hdr[:8])
	}
	written = fi.Size() - journalHeader
	return written, min(int64(binary.LittleEndian.Uint64(hdr[8:])), written), nil
}

// grew tells the spool about a change of the journal's size.
func (j *journalSource) grew(n int64) {
	if j.space != nil && n != 0 {
		j.space.JournalGrew(n)
	}
}

// reset empties the journal and writes its header; mu held or not yet shared.
func (j *journalSource) reset() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("driver: journal %s: %w", j.f.Name(), err)
	}
	j.grew(-j.held())
	j.written, j.committed, j.readOff, j.holeEnd = 0, 0, 0, 0
	copy(j.hdr[:8], journalMagic)
	return j.writeCommitted()
}

// held returns the data bytes the journal keeps on disk: those written,
// less the blocks given back. mu held, or the pump ended.
func (j *journalSource) held() int64 {
	return j.written - j.punched()
}

// punched returns the data bytes whose blocks were given back. Reader
// goroutine, or mu held.
func (j *journalSource) punched() int64 {
	return max(j.holeEnd-journalBlock, 0)
}

// free gives the blocks of stored bytes back to the filesystem once
// journalFreeEvery of them gathered: it punches a hole from the second
// block up to the last whole block before the first byte not stored. The
// header must already say so (a hole past it would be read back as zeros
// after a crash). On a filesystem that cannot punch holes, nothing is
// freed until the journal is emptied. Reader goroutine only.
func (j *journalSource) free() {
	end := (journalHeader + j.committed) &^ (journalBlock - 1)
	start := max(j.holeEnd, journalBlock)
	if j.noHoles || end-start < journalFreeEvery {
		return
	}
	if err := syscall.Fallocate(j.fd, fallocPunchHole|fallocKeepSize, start, end-start); err != nil {
		j.noHoles = true
		return
	}
	before := j.punched()
	j.holeEnd = end
	j.grew(before - j.punched())
}

// FALLOC_FL_KEEP_SIZE and FALLOC_FL_PUNCH_HOLE, missing from package syscall.
const (
	fallocKeepSize  = 0x1
	fallocPunchHole = 0x2
)

// writeCommitted stores committed in the header.
func (j *journalSource) writeCommitted() error {
	binary.LittleEndian.PutUint64(j.hdr[8:], uint64(j.committed))
	if _, err := syscall.Pwrite(j.fd, j.hdr[:], 0); err != nil {
		return fmt.Errorf("driver: journal %s: write header: %w", j.f.Name(), err)
	}
	return nil
}

// Ready returns how many journal bytes Read can deliver without waiting.
// For the reader goroutine only.
func (j *journalSource) Ready() int64 {
	if j.bypass {
		return 0
	}
	j.mu.Lock()
	w, eof := j.written, j.eof
	j.mu.Unlock()
	if j.yielding(w, eof) {
		return 0
	}
	return w - j.readOff
}

// yielding reports whether the stream leaves the journal's bytes for later
// (w are the data bytes written, eof whether the pump ended): while the
// container is writing a burst, the journal takes it off Docker's pipe and
// its records are decoded, encoded and compressed once the container pauses,
// so that a busy container does not share the CPU with its own logging.
// The stream turns to the burst anyway yieldFor after it began leaving it
// (and then goes on until it has caught up), once the bytes not stored reach
// 7/8 of the journal's limit, or once the spool's room for journals falls
// below 1/8 of it, so a burst never outgrows the journal for waiting. Reader
// goroutine only.
func (j *journalSource) yielding(w int64, eof bool) bool {
	margin := j.limit / 8
	now := time.Now()
	switch {
	case j.yieldFor < 0 || eof || j.bypass || j.interrupted.Load():
		return false
	case now.UnixNano()-j.lastPump.Load() > int64(j.quiet):
		// The container paused.
		j.yieldSince = time.Time{}
		return false
	case w-j.committed >= j.limit-margin, j.space != nil && j.space.JournalRoom() < margin:
		return false
	case j.yieldSince.IsZero():
		j.yieldSince = now
		return true
	}
	return now.Sub(j.yieldSince) < j.yieldFor
}

// Pending returns the journal's bytes not yet stored. Safe from any
// goroutine.
func (j *journalSource) Pending() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.written - j.committed
}

// pump moves the FIFO's bytes to the journal until EOF, Interrupt or
// Close, pausing while the journal holds limit bytes not yet stored.
func (j *journalSource) pump() {
	defer close(j.pumpDone)
	defer signal(j.more)
	failing := false
	var retry, pause *time.Timer
	for !j.interrupted.Load() {
		j.mu.Lock()
		room := j.limit - (j.written - j.committed)
		bypass := j.bypass
		j.mu.Unlock()
		full := false
		if !bypass && room > 0 && j.space != nil {
			if r := j.space.JournalRoom(); r < journalMinRoom {
				room, full = 0, true
			} else {
				room = min(room, r)
			}
		}
		if bypass || room <= 0 {
			// Wait for a commit; the spool's room is looked at again
			// every pumpRetry.
			var tick <-chan time.Time
			if bypass || full {
				tick = arm(&retry, pumpRetry)
			}
			select {
			case <-j.room:
			case <-tick:
			case <-j.stop:
				return
			}
			if full {
				signal(j.more) // the stream may switch to reading directly
			}
			continue
		}
		n, ferr, err := j.splice(min(room, pumpChunk))
		switch {
		case errors.Is(err, errBypass):
		case err != nil:
			// The FIFO failed: closed by Interrupt or Close, or gone.
			return
		case ferr != nil:
			// The journal cannot take the bytes (a full disk): discard
			// them so Docker never blocks.
			if !failing && j.onError != nil {
				j.onError(ferr)
			}
			failing = true
			if d, derr := j.discard(); derr != nil {
				return
			} else if d == 0 {
				j.setEOF()
				return
			} else if j.onDrop != nil {
				j.onDrop(d)
			}
		case n == 0:
			j.setEOF()
			return
		default:
			failing = false
			j.lastPump.Store(time.Now().UnixNano())
			j.grew(n)
			signal(j.more)
			if n < pumpBatch {
				select {
				case <-arm(&pause, pumpPause):
				case <-j.stop:
					return
				}
			}
		}
	}
}

// pumpRetry is how often a pump waiting for room on the spool looks again.
const pumpRetry = 50 * time.Millisecond

// idleReader is a direct source that can treat an empty FIFO as idle
// (peekSource).
type idleReader interface {
	ReadIdle(b []byte) (int, error)
}

// errBypass: the stream reads the FIFO directly; nothing was moved.
var errBypass = errors.New("driver: journal bypassed")

func (j *journalSource) setEOF() {
	j.mu.Lock()
	j.eof = true
	j.mu.Unlock()
}

// splice moves up to max bytes from the FIFO to the journal's end, waiting
// in the poller while the FIFO is empty. ferr is the journal's error
// (nothing moved), err the FIFO's; n == 0 without error is EOF.
func (j *journalSource) splice(max int64) (n int64, ferr, err error) {
	var serr error
	bypass := false
	err = j.rc.Read(func(fd uintptr) bool {
		for {
			j.mu.Lock()
			if j.bypass {
				j.mu.Unlock()
				bypass = true
				return true
			}
			off := journalHeader + j.written
			n, serr = syscall.Splice(int(fd), nil, j.fd, &off, int(max), spliceNonblock)
			if n > 0 {
				j.written += n
			}
			j.mu.Unlock()
			if !errors.Is(serr, syscall.EINTR) {
				break
			}
		}
		return !errors.Is(serr, syscall.EAGAIN)
	})
	switch {
	case bypass:
		return 0, nil, errBypass
	case err != nil:
		return 0, nil, err
	case serr == nil:
		return n, nil, nil
	case errors.Is(serr, syscall.EBADF), errors.Is(serr, syscall.EINVAL):
		return 0, nil, fmt.Errorf("driver: splice FIFO: %w", serr)
	default:
		return 0, fmt.Errorf("driver: write journal %s: %w", j.f.Name(), serr), nil
	}
}

// discard reads and drops up to 64 KiB from the FIFO, waiting for bytes.
func (j *journalSource) discard() (int64, error) {
	if j.scratch == nil {
		j.scratch = make([]byte, 64<<10)
	}
	n, err := j.fifo.Read(j.scratch)
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	return int64(n), err
}

// arm makes *t fire after d, creating it on first use, and returns its
// channel.
func arm(t **time.Timer, d time.Duration) <-chan time.Time {
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	return (*t).C
}

// signal wakes the receiver of a 1-buffered channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Read delivers the journal's next bytes. It waits for the pump while the
// journal is caught up; with delivered bytes uncommitted it gives up after
// peekIdle with errIdle, and once the FIFO reached EOF it returns errHangup
// (bytes uncommitted) or io.EOF.
func (j *journalSource) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var idleSince time.Time
	for {
		if j.interrupted.Load() {
			return 0, errInterrupted
		}
		if j.bypass {
			partial, peeked := j.readOff > j.committed, j.direct.Uncommitted() > 0
			if partial || peeked || j.space.JournalRoom() < journalMinRoom {
				if ir, ok := j.direct.(idleReader); ok && partial && !peeked {
					// The journal's partial frame waits: an empty FIFO
					// must end in errIdle, so the stream's hold and
					// release timeouts run, not wait for the next write.
					return ir.ReadIdle(b)
				}
				return j.direct.Read(b)
			}
			j.mu.Lock()
			j.bypass = false
			j.mu.Unlock()
			signal(j.room)
		}
		j.mu.Lock()
		w, eof := j.written, j.eof
		if !eof && j.readOff == w && j.direct != nil && j.space != nil && j.space.JournalRoom() < journalMinRoom {
			// No room on the spool and every journal byte delivered: read
			// the FIFO directly, so the spool's policy decides as it
			// would without a journal. The FIFO's bytes follow the
			// journal's, uncommitted ones (the start of a frame) too.
			j.bypass = true
			var err error
			if j.committed == w {
				err = j.reset()
			}
			j.mu.Unlock()
			if err != nil {
				return 0, err
			}
			continue
		}
		j.mu.Unlock()
		if j.readOff < w && j.yielding(w, eof) {
			select {
			case <-j.stop:
			case <-arm(&j.idle, yieldPoll):
			}
			j.idle.Stop()
			continue
		}
		if j.readOff < w {
			k := min(int64(len(b)), w-j.readOff)
			n, err := syscall.Pread(j.fd, b[:k], journalHeader+j.readOff)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("driver: read journal %s: %w", j.f.Name(), errOr(err, io.ErrUnexpectedEOF))
			}
			j.readOff += int64(n)
			return n, nil
		}
		j.yieldSince = time.Time{} // caught up
		if eof {
			if j.readOff > j.committed {
				return 0, errHangup
			}
			return 0, io.EOF
		}
		if j.readOff == j.committed {
			select {
			case <-j.more:
			case <-j.stop:
			}
			continue
		}
		now := time.Now()
		if idleSince.IsZero() {
			idleSince = now
		}
		wait := peekIdle - now.Sub(idleSince)
		if wait <= 0 {
			return 0, errIdle
		}
		select {
		case <-j.more:
		case <-j.stop:
		case <-arm(&j.idle, wait):
		}
		j.idle.Stop()
	}
}

// Commit records that the next n delivered bytes are stored. When all the
// journal holds is stored and it has grown past journalEmptyAt, it is
// emptied.
func (j *journalSource) Commit(n int64) error {
	if j.bypass {
		// The journal's delivered bytes come first, then the FIFO's.
		k := min(n, j.readOff-j.committed)
		if err := j.commitJournal(k); err != nil {
			return err
		}
		if n -= k; n > 0 {
			return j.direct.Commit(n)
		}
		return nil
	}
	if n > j.readOff-j.committed {
		return fmt.Errorf("driver: commit %d bytes, only %d delivered", n, j.readOff-j.committed)
	}
	return j.commitJournal(n)
}

// commitJournal commits n delivered journal bytes.
func (j *journalSource) commitJournal(n int64) error {
	if n <= 0 {
		return nil
	}
	j.mu.Lock()
	var err error
	j.committed += n
	if j.committed == j.written && (j.written >= journalEmptyAt || j.bypass) {
		// The pump holds mu while it writes, so the file is emptied and
		// its header rewritten before any new byte lands.
		err = j.reset()
	} else {
		err = j.writeCommitted()
	}
	j.mu.Unlock()
	if err == nil {
		j.free()
	}
	signal(j.room)
	return err
}

// Uncommitted returns the delivered bytes not yet committed.
func (j *journalSource) Uncommitted() int64 {
	if j.bypass {
		return j.readOff - j.committed + j.direct.Uncommitted()
	}
	return j.readOff - j.committed
}

// Release commits every delivered byte.
func (j *journalSource) Release() error {
	if err := j.commitJournal(j.readOff - j.committed); err != nil {
		return err
	}
	if j.bypass {
		return j.direct.Release()
	}
	return nil
}

// Interrupt makes Read return errInterrupted and stops the pump; what the
// journal and the FIFO hold stays for the next start.
func (j *journalSource) Interrupt() {
	j.interrupted.Store(true)
	j.halt()
	if j.direct != nil {
		j.direct.Interrupt()
	}
}

// halt stops the pump: a splice in progress completes, none starts.
func (j *journalSource) halt() {
	j.stopOnce.Do(func() { close(j.stop) })
	if j.fifo != nil {
		j.fifo.SetReadDeadline(time.Unix(1, 0))
	}
}

// Close stops the pump and waits for it, then closes the journal, removing
// it when everything it held was stored.
func (j *journalSource) Close() error {
	j.interrupted.Store(true)
	j.halt()
	<-j.pumpDone
	j.mu.Lock()
	done := j.committed == j.written
	j.mu.Unlock()
	err := j.f.Close()
	if done {
		if rerr := os.Remove(j.f.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		} else {
			j.grew(-j.held())
		}
	}
	if c, ok := j.direct.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}

// journalPending reports whether the journal at path holds bytes not yet
// stored.
func journalPending(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	written, committed, err := readJournalHeader(f)
	return err == nil && committed < written
}
