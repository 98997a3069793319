package fifo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
)

// MaxFrameSize is the largest frame payload, in bytes, that Decode accepts.
const MaxFrameSize = 1 << 20

// DefaultBufSize is the read buffer size used when Options.BufSize (or
// NewDecoder's bufSize) is <= 0.
const DefaultBufSize = 1 << 20

// Defaults of the time_nano window that a frame must fall in to be accepted
// while resynchronising (see Options).
const (
	DefaultMaxPast   = 30 * 24 * time.Hour
	DefaultMaxFuture = 24 * time.Hour
)

const (
	headerSize = 4
	minBufSize = 16
)

// Sentinel errors; compare with errors.Is. Decode returns ErrFrameTooLarge,
// ErrCorrupt, ErrTruncated and ErrResyncRequested only as the Cause of a
// *SkipError, which matches them too.
var (
	// ErrSkipped matches every *SkipError: Decode dropped bytes to find the
	// next frame boundary.
	ErrSkipped = errors.New("fifo: skipped bytes to resynchronise")
	// ErrFrameTooLarge means a length prefix exceeded MaxFrameSize.
	ErrFrameTooLarge = errors.New("fifo: frame too large")
	// ErrTruncated means the stream ended inside a frame. Errors wrapping it
	// also match io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("fifo: truncated frame")
	// ErrCorrupt means a frame payload is not a valid protobuf LogEntry.
	ErrCorrupt = errors.New("fifo: corrupt frame")
	// ErrResyncRequested is the cause of a resynchronisation started by
	// Decoder.Resync or Options.Resync.
	ErrResyncRequested = errors.New("fifo: resynchronisation requested")
)

// SkipError reports the bytes that Decode dropped while resynchronising: the
// bytes from the last position it trusted up to the next frame boundary it
// found, or up to the end of the stream. It matches ErrSkipped and Cause with
// errors.Is.
type SkipError struct {
	// Bytes is the number of stream bytes dropped, always > 0.
	Bytes int64
	// Cause is why the decoder stopped trusting the stream: an error
	// wrapping ErrFrameTooLarge, ErrCorrupt or ErrTruncated, or
	// ErrResyncRequested.
	Cause error
}

func (e *SkipError) Error() string {
	return fmt.Sprintf("fifo: skipped %d bytes to resynchronise after: %v", e.Bytes, e.Cause)
}

// Unwrap returns ErrSkipped and Cause.
func (e *SkipError) Unwrap() []error {
	if e.Cause == nil {
		return []error{ErrSkipped}
	}
	return []error{ErrSkipped, e.Cause}
}

// Options configure a Decoder. The zero value gives the defaults.
type Options struct {
	// BufSize is the size in bytes of the read buffer: DefaultBufSize when
	// <= 0, at least 16. Frames whose header and payload fit in it are
	// decoded in place. To hold a larger frame (while resynchronising, a
	// frame and the header after it), the buffer grows as the frame's bytes
	// arrive, at most doubling at a time and never beyond the length the
	// frame states plus 8 bytes (so at most MaxFrameSize+8), and keeps its
	// size for later frames.
	BufSize int

	// Now is the clock that time_nano is checked against while
	// resynchronising; nil means time.Now. Decode calls it, on the caller's
	// goroutine, once for each candidate frame that decodes.
	Now func() time.Time

	// MaxPast and MaxFuture bound the time_nano of a frame accepted while
	// resynchronising: it must lie within [Now()-MaxPast, Now()+MaxFuture]
	// (and not be 0). Values <= 0 mean DefaultMaxPast (30 days) and
	// DefaultMaxFuture (1 day).
	MaxPast, MaxFuture time.Duration

	// Resync starts the decoder in resync mode, as if Resync had been
	// called: for a FIFO re-attached after a crash, whose first byte need
	// not start a frame.
	Resync bool
}

// Decoder reads frames from a Docker logging FIFO. It is not safe for
// concurrent use: all its methods must be called from one goroutine at a
// time. See the package documentation for its error, resynchronisation,
// offset and buffer reuse contract.
type Decoder struct {
	rd    io.Reader
	buf   []byte // buf[r:w] has been read and not yet consumed
	r, w  int
	rerr  error // read error not yet returned
	short bool  // the last read returned less than it had room for

	off     int64 // stream offset of buf[r]
	skipped int64 // bytes dropped, in total

	resync  bool  // searching for a frame boundary
	cause   error // why the search started
	pending int64 // bytes dropped by the search and not yet reported

	// Early rejection of a candidate frame whose payload is still arriving:
	// walkAt is the payload offset up to which walk has checked the
	// candidate at stream offset walkOff, walkDepth the group depth there.
	walkOff   int64
	walkAt    int
	walkDepth int

	opts Options // normalised

	meta       logentry.PartialLogEntryMetadata // target of PartialLogMetadata
	lastSource string                           // interned non-standard source
	lastID     string                           // interned partial id
}

// NewDecoder returns a Decoder reading from r with a read buffer of bufSize
// bytes and the default Options otherwise. It is NewDecoderOptions(r,
// Options{BufSize: bufSize}).
func NewDecoder(r io.Reader, bufSize int) *Decoder {
	return NewDecoderOptions(r, Options{BufSize: bufSize})
}

// NewDecoderOptions returns a Decoder reading from r, configured by opts
// (see Options for the defaults). It allocates the read buffer at once.
func NewDecoderOptions(r io.Reader, opts Options) *Decoder {
	if opts.BufSize <= 0 {
		opts.BufSize = DefaultBufSize
	}
	opts.BufSize = max(opts.BufSize, minBufSize)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPast <= 0 {
		opts.MaxPast = DefaultMaxPast
	}
	if opts.MaxFuture <= 0 {
		opts.MaxFuture = DefaultMaxFuture
	}
	d := &Decoder{buf: make([]byte, opts.BufSize), opts: opts}
	d.Reset(r)
	return d
}

// Reset makes d read from r as a new Decoder would, with the same Options
// (so in resync mode if Options.Resync is set): it drops the buffered bytes
// and zeroes Offset and Skipped, but keeps the read buffer.
func (d *Decoder) Reset(r io.Reader) {
	d.rd = r
	d.r, d.w = 0, 0
	d.rerr = nil
	d.short = false
	d.off, d.skipped = 0, 0
	d.resync, d.cause, d.pending = false, nil, 0
	d.walkOff, d.walkAt, d.walkDepth = -1, 0, 0
	if d.opts.Resync {
		d.Resync()
	}
}

// Resync puts d in resync mode: the next Decode returns a frame only at a
// position that passes the resync acceptance rules (see the package
// documentation), skipping bytes up to it if needed. Call it when the next
// byte may not start a frame, such as right after re-attaching to a FIFO.
// When the current position is a frame boundary, nothing is skipped and no
// error is reported. Calling it while d is already resynchronising has no
// effect.
func (d *Decoder) Resync() {
	d.startResync(ErrResyncRequested)
}

// Buffered returns the number of bytes already read from the underlying reader
// and not yet consumed (returned in a frame or skipped). When it is 0 the next
// Decode reads from the underlying reader and may block.
func (d *Decoder) Buffered() int {
	return d.w - d.r
}

// Shrink returns a read buffer that grew beyond Options.BufSize (to hold a
// large frame) to that size, keeping the bytes buffered, when they fit;
// otherwise it does nothing. A stream calls it now and then, between
// Decode calls (never from inside its reader), so that one 1 MiB frame does
// not pin 1 MiB for the rest of the stream.
func (d *Decoder) Shrink() {
	if len(d.buf) <= d.opts.BufSize || d.w-d.r > d.opts.BufSize {
		return
	}
	nb := make([]byte, d.opts.BufSize)
	d.w = copy(nb, d.buf[d.r:d.w])
	d.r = 0
	d.buf = nb
}

// Offset returns the number of stream bytes that lie before the next frame
// Decode can return: the bytes of the frames already returned plus the bytes
// skipped (Skipped), counted from the start of the stream (or the last
// Reset). It does not count bytes that are only buffered. After Decode
// returns a frame it is the offset of that frame's end; after a *SkipError
// it is the offset of the frame boundary found; after io.EOF it is the
// length of the stream. While a search is in progress (Decode returned a
// reader error) it includes the bytes already found not to start a frame.
// Consuming exactly Offset bytes of the stream consumes whole frames and
// dropped bytes, never part of a frame still to be returned.
//
// Offset may also be called from the underlying reader's Read while Decode
// runs (on Decode's goroutine); it then reports the start of the frame being
// read, or the position a search has reached.
func (d *Decoder) Offset() int64 {
	return d.off
}

// Skipped returns the number of stream bytes dropped so far (since the start
// or the last Reset): the sum of the Bytes of the *SkipErrors returned, plus
// the bytes dropped by a search that has not ended yet. Like Offset, it may
// be called from the underlying reader's Read.
func (d *Decoder) Skipped() int64 {
	return d.skipped
}

// Decode decodes the next frame into e, overwriting every field and reusing
// e.Line's capacity. It returns nil with a frame, io.EOF (unwrapped) at the
// end of the stream, a *SkipError when it dropped bytes (the next Decode
// returns the frame at the boundary it found, or io.EOF), or an error from
// the underlying reader, wrapped, after which Decode may be called again. On
// error e's contents are unspecified. See the package documentation.
func (d *Decoder) Decode(e *logentry.LogEntry) error {
	if d.resync {
		return d.search(e, false)
	}
	if d.w-d.r < headerSize {
		if err := d.fill(headerSize, headerSize); err != nil {
			return d.fillFailed(e, err, "frame header", d.w-d.r, headerSize)
		}
	}
	n := binary.BigEndian.Uint32(d.buf[d.r:])
	if n > MaxFrameSize {
		d.startResync(fmt.Errorf("%w: length prefix %d exceeds %d bytes", ErrFrameTooLarge, n, MaxFrameSize))
		d.drop(1)
		return d.search(e, false)
	}
	end := headerSize + int(n)
	if d.w-d.r < end {
		if err := d.fill(end, end); err != nil {
			return d.fillFailed(e, err, "frame payload", d.w-d.r-headerSize, int(n))
		}
	}
	if err := d.unmarshal(d.buf[d.r+headerSize:d.r+end], e); err != nil {
		d.startResync(fmt.Errorf("%w: %d-byte frame: %w", ErrCorrupt, n, err))
		d.drop(1)
		return d.search(e, false)
	}
	d.r += end
	d.off += int64(end)
	return nil
}

// fillFailed handles a failed read of a frame that Decode trusts. At the end
// of the stream the partial frame is dropped and reported with ErrTruncated
// as the cause, and the decoder resynchronises if the stream goes on.
func (d *Decoder) fillFailed(e *logentry.LogEntry, err error, what string, got, want int) error {
	if !errors.Is(err, io.EOF) {
		return fmt.Errorf("fifo: read %s: %w", what, err)
	}
	if d.w == d.r {
		return io.EOF
	}
	d.startResync(fmt.Errorf("%w: %s: got %d of %d bytes: %w", ErrTruncated, what, got, want, io.ErrUnexpectedEOF))
	d.drop(d.w - d.r) // the torn frame: nothing in it is a frame boundary
	return d.search(e, true)
}

// startResync enters resync mode, unless already in it.
func (d *Decoder) startResync(cause error) {
	if d.resync {
		return
	}
	d.resync = true
	d.cause = cause
	d.pending = 0
}

// drop skips n buffered bytes.
func (d *Decoder) drop(n int) {
	d.r += n
	d.off += int64(n)
	d.skipped += int64(n)
	d.pending += int64(n)
}

// search looks for the next frame boundary, from the current position on.
// eof reports that the stream is known to have ended.
func (d *Decoder) search(e *logentry.LogEntry, eof bool) error {
	for {
		// A plausible length is at most MaxFrameSize (0x00100000): its first
		// byte is 0. Skip every other byte at once.
		if d.r < d.w && d.buf[d.r] != 0 {
			i := bytes.IndexByte(d.buf[d.r:d.w], 0)
			if i < 0 {
				i = d.w - d.r
			}
			d.drop(i)
		}
		if d.w-d.r < headerSize {
			if eof {
				d.drop(d.w - d.r)
				return d.searchEnded()
			}
			if err := d.fill(headerSize, headerSize); err != nil {
				if errors.Is(err, io.EOF) {
					eof = true
					continue
				}
				return fmt.Errorf("fifo: read while resynchronising: %w", err)
			}
			continue
		}
		ok, err := d.candidate(e, &eof)
		if err != nil {
			return fmt.Errorf("fifo: read while resynchronising: %w", err)
		}
		if !ok {
			d.drop(1)
			continue
		}
		d.resync = false
		if d.pending > 0 {
			// Report the skip; the next Decode returns the frame, which
			// stays buffered.
			err := &SkipError{Bytes: d.pending, Cause: d.cause}
			d.pending, d.cause = 0, nil
			return err
		}
		d.cause = nil
		end := headerSize + int(binary.BigEndian.Uint32(d.buf[d.r:]))
		d.r += end
		d.off += int64(end)
		return nil
	}
}

// searchEnded reports the end of the stream during a search: the skipped
// bytes if any, else io.EOF. The decoder stays in resync mode, should the
// stream go on.
func (d *Decoder) searchEnded() error {
	if d.pending > 0 {
		err := &SkipError{Bytes: d.pending, Cause: d.cause}
		d.pending = 0
		return err
	}
	return io.EOF
}

// candidate reports whether the frame at the current position passes the
// resync acceptance rules, decoding it into e. It reads as much as it needs,
// setting *eof when the stream ends; it returns only read errors other than
// io.EOF. There are at least headerSize bytes buffered.
func (d *Decoder) candidate(e *logentry.LogEntry, eof *bool) (bool, error) {
	n := binary.BigEndian.Uint32(d.buf[d.r:])
	if n == 0 || n > MaxFrameSize {
		return false, nil
	}
	end := headerSize + int(n)
	// The payload: wait for it, unless the part that arrived already shows
	// that it is not a LogEntry.
	for d.w-d.r < end {
		if *eof || d.prefixInvalid(int(n)) {
			return false, nil
		}
		if err := d.fill(d.w-d.r+1, end+headerSize); err != nil {
			if !errors.Is(err, io.EOF) {
				return false, err
			}
			*eof = true
		}
	}
	// The header after it must be plausible, or the data must end exactly
	// at the frame's end: the last read returned less than it could (the
	// writer has written no more yet), or the stream ended.
	for {
		avail := d.w - d.r
		if avail >= end+headerSize {
			if !plausibleLength(binary.BigEndian.Uint32(d.buf[d.r+end:])) {
				return false, nil
			}
			break
		}
		if avail == end && (d.short || *eof) {
			break
		}
		if *eof {
			return false, nil // a torn header after the frame
		}
		if err := d.fill(avail+1, end+headerSize); err != nil {
			if !errors.Is(err, io.EOF) {
				return false, err
			}
			*eof = true
		}
	}
	if d.unmarshal(d.buf[d.r+headerSize:d.r+end], e) != nil {
		return false, nil
	}
	if e.Source != stdout && e.Source != stderr {
		return false, nil
	}
	return d.plausibleTime(e.TimeNano), nil
}

// plausibleLength reports whether n is a plausible length prefix while
// resynchronising.
func plausibleLength(n uint32) bool {
	return n >= 1 && n <= MaxFrameSize
}

// plausibleTime reports whether t is a plausible time_nano while
// resynchronising.
func (d *Decoder) plausibleTime(t int64) bool {
	if t == 0 {
		return false
	}
	now := d.opts.Now().UnixNano()
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if past := int64(d.opts.MaxPast); now >= math.MinInt64+past {
		lo = now - past
	}
	if future := int64(d.opts.MaxFuture); now <= math.MaxInt64-future {
		hi = now + future
	}
	return t >= lo && t <= hi
}

// prefixInvalid reports whether the part of the n-byte payload at the
// current position that has arrived shows that it is not a valid LogEntry.
// It resumes where its last call for the same candidate stopped, so waiting
// for a large payload read by read costs time linear in its size.
func (d *Decoder) prefixInvalid(n int) bool {
	if d.walkOff != d.off {
		d.walkOff, d.walkAt, d.walkDepth = d.off, 0, 0
	}
	var bad bool
	d.walkAt, d.walkDepth, bad = walk(d.buf[d.r+headerSize:d.w], n, d.walkAt, d.walkDepth)
	return bad
}

// fill reads until at least need bytes are buffered. If the buffer must grow
// to hold them, it grows when it is full, each time to twice its size but at
// most want (>= need) bytes, so never ahead of the data. It returns the read error (io.EOF included) that
// leaves fewer than need bytes buffered, and keeps one that comes with
// enough bytes for the next call.
func (d *Decoder) fill(need, want int) error {
	empty := 0
	for d.w-d.r < need {
		if d.rerr != nil {
			err := d.rerr
			d.rerr = nil
			return err
		}
		if d.r > 0 { // slide the unconsumed bytes to the front, as bufio does
			d.w = copy(d.buf, d.buf[d.r:d.w])
			d.r = 0
		}
		if d.w == len(d.buf) {
			nb := make([]byte, min(2*len(d.buf), want))
			d.w = copy(nb, d.buf[:d.w])
			d.buf = nb
		}
		room := len(d.buf) - d.w
		n, err := d.rd.Read(d.buf[d.w:])
		if n < 0 || n > room {
			panic("fifo: reader returned an invalid count")
		}
		d.w += n
		d.short = n < room || err != nil
		if err != nil {
			d.rerr = err
		} else if n == 0 {
			if empty++; empty >= 100 {
				return io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return nil
}
