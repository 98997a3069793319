package driver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// frameSource is what a stream reads its FIFO through. Read delivers the
// FIFO's bytes in order; Commit says that the first n bytes delivered and
// not yet committed are stored and may leave the FIFO. A source that
// consumes as it reads (plainSource) ignores Commit.
type frameSource interface {
	io.Reader
	// Commit removes the next n delivered bytes from the FIFO.
	Commit(n int64) error
	// Uncommitted returns how many delivered bytes are still in the FIFO.
	Uncommitted() int64
	// Release consumes every delivered byte, stored or not, so that later
	// reads behave like plain reads of what follows (used when a frame
	// cannot be completed, such as a truncated last frame).
	Release() error
	// Interrupt makes a blocked or later Read return errInterrupted.
	Interrupt()
}

// Errors of a frameSource's Read. Both leave the source usable, and the
// decoder keeps its position: Decode may be called again.
var (
	// errIdle: no new byte arrived for peekIdle while delivered bytes wait
	// uncommitted in the FIFO; the stream decides whether to release them.
	errIdle = errors.New("driver: FIFO idle with uncommitted bytes")
	// errInterrupted: Interrupt was called (shutdown).
	errInterrupted = errors.New("driver: FIFO read interrupted")
	// errHangup: Docker closed the FIFO while delivered bytes wait
	// uncommitted in it; nothing more will come, so the stream stores or
	// releases what it holds.
	errHangup = errors.New("driver: FIFO closed by Docker with uncommitted bytes")
)

// plainSource reads and consumes at once: a crash loses what was read and
// not yet stored. It serves sources that are not pipes (benchmarks replay
// recorded bytes) and FIFOs on which tee(2) fails.
type plainSource struct {
	r           io.Reader
	interrupted atomic.Bool
	f           *os.File // set for FIFOs, to interrupt a blocked read
}

func (p *plainSource) Read(b []byte) (int, error) {
	if p.interrupted.Load() {
		return 0, errInterrupted
	}
	n, err := p.r.Read(b)
	if err != nil && p.interrupted.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		err = errInterrupted
	}
	return n, err
}

func (p *plainSource) Commit(int64) error { return nil }
func (p *plainSource) Uncommitted() int64 { return 0 }
func (p *plainSource) Release() error     { return nil }
func (p *plainSource) Interrupt() {
	p.interrupted.Store(true)
	if p.f != nil {
		p.f.SetReadDeadline(time.Unix(1, 0))
	}
}

// peekIdle is how long peekSource.Read waits for new bytes, while delivered
// bytes sit uncommitted in the FIFO, before it returns errIdle.
const peekIdle = 50 * time.Millisecond

// spliceNonblock is SPLICE_F_NONBLOCK, missing from package syscall.
const spliceNonblock = 0x2

// peekSource reads a FIFO without consuming it, so that a crash leaves
// every byte not yet stored in the pipe for the next process: Read copies
// the FIFO's contents with tee(2) into a private pipe and reads them from
// there; Commit consumes stored bytes from the FIFO with splice(2) into
// /dev/null (or a read when /dev/null cannot take a splice).
//
// tee(2) always copies from the head of the FIFO, which holds the
// delivered but uncommitted bytes first; Read skips those repeats inside
// the kernel (splice from the private pipe into /dev/null) and delivers only
// the bytes after them. While uncommitted bytes sit in the FIFO it is always
// readable, so the poller cannot tell when new bytes arrive: Read then polls
// with short sleeps and gives up after peekIdle with errIdle.
//
// Only the stream's reader goroutine calls Read, Commit and Release;
// Interrupt may be called from any goroutine. The FIFO and /dev/null files
// are owned by the caller; Close closes only the private pipe.
type peekSource struct {
	fifo    *os.File
	rc      syscall.RawConn
	devNull *os.File // may be nil: Commit then reads into scratch
	pr, pw  int      // private pipe, non-blocking
	size    int      // the FIFO's capacity in bytes
	peeked  int64    // delivered bytes still at the head of the FIFO
	scratch []byte

	interrupted atomic.Bool
}

// newPeekSource prepares a peekSource for fifo (open O_RDONLY|O_NONBLOCK)
// and checks that tee(2) works on it. devNull may be nil.
func newPeekSource(fifo *os.File, devNull *os.File) (*peekSource, error) {
	rc, err := fifo.SyscallConn()
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("driver: private pipe: %w", err)
	}
	s := &peekSource{fifo: fifo, rc: rc, devNull: devNull, pr: p[0], pw: p[1]}
	// The private pipe must hold everything one tee may copy: as much as
	// the FIFO holds.
	size := pipeSize
	rc.Control(func(fd uintptr) {
		if n, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSz, 0); e == 0 && int(n) > 0 {
			size = int(n)
		}
	})
	s.size = size
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(s.pw), fSetPipeSz, uintptr(size))
	// tee(2) works on pipes only (a zero-length tee succeeds on anything,
	// so it cannot tell).
	if fi, err := fifo.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		s.Close()
		return nil, fmt.Errorf("driver: %s is not a FIFO, tee(2) cannot peek it (stat: %v)", fifo.Name(), err)
	}
	return s, nil
}

// Read delivers the FIFO's next bytes, leaving them in the FIFO. It waits
// in the poller while the FIFO is empty and returns io.EOF once Docker has
// closed it and every byte was delivered and committed.
func (s *peekSource) Read(b []byte) (int, error) { return s.read(b, false) }

// ReadIdle is Read for a caller that holds uncommitted bytes of its own
// ahead of the FIFO's (a journal's partial frame): an empty FIFO counts as
// idle too, so it returns errIdle after peekIdle without a new byte
// instead of waiting for Docker's next write.
func (s *peekSource) ReadIdle(b []byte) (int, error) { return s.read(b, true) }

func (s *peekSource) read(b []byte, emptyIsIdle bool) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var idleSince time.Time
	sleep := 100 * time.Microsecond
	for {
		if s.interrupted.Load() {
			return 0, errInterrupted
		}
		want := s.peeked + int64(len(b))
		var n int64
		var terr error
		err := s.rc.Read(func(fd uintptr) bool {
			n, terr = syscall.Tee(int(fd), s.pw, int(want), spliceNonblock)
			// EAGAIN: the FIFO is empty; wait for the poller, unless
			// that counts as idle.
			return emptyIsIdle || !errors.Is(terr, syscall.EAGAIN)
		})
		if err != nil {
			if s.interrupted.Load() {
				return 0, errInterrupted
			}
			return 0, err
		}
		empty := false
		if terr != nil {
			switch {
			case errors.Is(terr, syscall.EINTR):
				continue
			case errors.Is(terr, syscall.EAGAIN): // emptyIsIdle
				n, empty = 0, true
			default:
				return 0, fmt.Errorf("driver: tee FIFO: %w", terr)
			}
		}
		if n == 0 && !empty {
			return 0, io.EOF
		}
		if n <= s.peeked {
			// Nothing new yet: only the uncommitted bytes are there.
			if err := s.discardPrivate(n); err != nil {
				return 0, err
			}
			if s.hungUp() {
				// Docker closed the FIFO: nothing more will come.
				return 0, errHangup
			}
			if idleSince.IsZero() {
				idleSince = time.Now()
			} else if time.Since(idleSince) >= peekIdle {
				return 0, errIdle
			}
			time.Sleep(sleep)
			sleep = min(2*sleep, 5*time.Millisecond)
			continue
		}
		if err := s.discardPrivate(s.peeked); err != nil {
			return 0, err
		}
		fresh := int(n - s.peeked)
		if err := s.readPrivate(b[:fresh]); err != nil {
			return 0, err
		}
		s.peeked = n
		return fresh, nil
	}
}

// discardPrivate drops n bytes from the private pipe.
func (s *peekSource) discardPrivate(n int64) error {
	for n > 0 {
		var m int64
		var err error
		if s.devNull != nil {
			m, err = syscall.Splice(s.pr, nil, int(s.devNull.Fd()), nil, int(n), 0)
		} else {
			var k int
			k, err = syscall.Read(s.pr, s.scratchBuf(n))
			m = int64(k)
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || m <= 0 {
			return fmt.Errorf("driver: drain private pipe: %d bytes left: %w", n, errOr(err, io.ErrUnexpectedEOF))
		}
		n -= m
	}
	return nil
}

// readPrivate fills b from the private pipe, which holds at least len(b)
// bytes.
func (s *peekSource) readPrivate(b []byte) error {
	for len(b) > 0 {
		k, err := syscall.Read(s.pr, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || k <= 0 {
			return fmt.Errorf("driver: read private pipe: %d bytes left: %w", len(b), errOr(err, io.ErrUnexpectedEOF))
		}
		b = b[k:]
	}
	return nil
}

// Commit consumes n delivered bytes from the head of the FIFO.
func (s *peekSource) Commit(n int64) error {
	if n > s.peeked {
		return fmt.Errorf("driver: commit %d bytes, only %d delivered", n, s.peeked)
	}
	var cerr error
	err := s.rc.Control(func(fd uintptr) {
		for n > 0 {
			var m int64
			var err error
			if s.devNull != nil {
				m, err = syscall.Splice(int(fd), nil, int(s.devNull.Fd()), nil, int(n), spliceNonblock)
			} else {
				var k int
				k, err = syscall.Read(int(fd), s.scratchBuf(n))
				m = int64(k)
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || m <= 0 {
				cerr = fmt.Errorf("driver: consume %d stored bytes from FIFO: %w", n, errOr(err, io.ErrUnexpectedEOF))
				return
			}
			n -= m
			s.peeked -= m
		}
	})
	return errors.Join(err, cerr)
}

// Uncommitted returns the delivered bytes still in the FIFO.
func (s *peekSource) Uncommitted() int64 { return s.peeked }

// Release consumes every delivered byte.
func (s *peekSource) Release() error { return s.Commit(s.peeked) }

// Interrupt makes Read return errInterrupted; a Read waiting in the poller
// is woken by a read deadline in the past.
func (s *peekSource) Interrupt() {
	s.interrupted.Store(true)
	s.fifo.SetReadDeadline(time.Unix(1, 0))
}

// hungUp reports whether the FIFO has no writer left (POLLHUP).
func (s *peekSource) hungUp() bool {
	const pollHup = 0x10
	type pollFd struct {
		fd      int32
		events  int16
		revents int16
	}
	hup := false
	s.rc.Control(func(fd uintptr) {
		p := pollFd{fd: int32(fd)}
		var ts syscall.Timespec
		n, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		hup = e == 0 && n == 1 && p.revents&pollHup != 0
	})
	return hup
}

// Close closes the private pipe.
func (s *peekSource) Close() error {
	return errors.Join(syscall.Close(s.pr), syscall.Close(s.pw))
}

func (s *peekSource) scratchBuf(n int64) []byte {
	if s.scratch == nil {
		s.scratch = make([]byte, 64<<10)
	}
	return s.scratch[:min(n, int64(len(s.scratch)))]
}

// errOr returns err, or def when err is nil.
func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
