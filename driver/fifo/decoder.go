package fifo

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/s3logs/s3logs/driver/logentry"
)

// MaxFrameSize is the largest frame payload, in bytes, that Decode accepts.
const MaxFrameSize = 1 << 20

// DefaultBufSize is the bufio buffer size NewDecoder uses when bufSize <= 0.
const DefaultBufSize = 1 << 20

const headerSize = 4

// Sentinel errors returned (wrapped) by Decode; compare with errors.Is.
var (
	// ErrFrameTooLarge means a length prefix exceeded MaxFrameSize.
	ErrFrameTooLarge = errors.New("fifo: frame too large")
	// ErrTruncated means the stream ended inside a frame. Errors wrapping it
	// also match io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("fifo: truncated frame")
	// ErrCorrupt means a frame payload is not a valid protobuf LogEntry.
	ErrCorrupt = errors.New("fifo: corrupt frame")
)

// Decoder reads frames from a Docker logging FIFO. It is not safe for
// concurrent use. See the package documentation for its error and buffer
// reuse contract.
type Decoder struct {
	br *bufio.Reader

	// Frame in progress for payloads larger than the bufio buffer: need is the
	// payload length (-1 when no frame is in progress), buf holds the bytes
	// read so far.
	need int
	buf  []byte

	sticky error // set after ErrFrameTooLarge

	meta       logentry.PartialLogEntryMetadata // target of PartialLogMetadata
	lastSource string                           // interned non-standard source
	lastID     string                           // interned partial id
}

// NewDecoder returns a Decoder reading from r through a bufio.Reader of
// bufSize bytes (DefaultBufSize when bufSize <= 0; bufio's minimum of 16
// applies). Frames whose header and payload fit in the buffer are decoded in
// place without copying; larger frames are assembled in a separate buffer that
// grows as their bytes arrive, never ahead of the data.
func NewDecoder(r io.Reader, bufSize int) *Decoder {
	if bufSize <= 0 {
		bufSize = DefaultBufSize
	}
	return &Decoder{br: bufio.NewReaderSize(r, bufSize), need: -1}
}

// Buffered returns the number of bytes already read from the underlying reader
// and not yet decoded. When it is 0 the next Decode reads from the underlying
// reader and may block.
func (d *Decoder) Buffered() int {
	return d.br.Buffered()
}

// Decode decodes the next frame into e, overwriting every field and reusing
// e.Line's capacity. It returns io.EOF at a clean end of stream and otherwise
// errors wrapping ErrTruncated, ErrFrameTooLarge, ErrCorrupt or the
// underlying reader's error. On error e's contents are unspecified.
func (d *Decoder) Decode(e *logentry.LogEntry) error {
	if d.sticky != nil {
		return d.sticky
	}
	if d.need >= 0 {
		return d.readLarge(e)
	}
	hdr, err := d.br.Peek(headerSize)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(hdr) == 0 {
				return io.EOF
			}
			return d.truncated("frame header", len(hdr), headerSize)
		}
		return fmt.Errorf("fifo: read frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > MaxFrameSize {
		d.sticky = fmt.Errorf("%w: length prefix %d exceeds %d bytes", ErrFrameTooLarge, n, MaxFrameSize)
		return d.sticky
	}
	size := int(n)
	if headerSize+size > d.br.Size() {
		if _, err := d.br.Discard(headerSize); err != nil {
			return fmt.Errorf("fifo: discard frame header: %w", err)
		}
		d.need = size
		d.buf = d.buf[:0]
		return d.readLarge(e)
	}
	frame, err := d.br.Peek(headerSize + size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return d.truncated("frame payload", len(frame)-headerSize, size)
		}
		return fmt.Errorf("fifo: read %d-byte frame: %w", size, err)
	}
	err = d.unmarshal(frame[headerSize:], e)
	if _, derr := d.br.Discard(headerSize + size); derr != nil {
		return fmt.Errorf("fifo: discard frame: %w", derr)
	}
	if err != nil {
		return fmt.Errorf("%w: %d-byte frame: %w", ErrCorrupt, size, err)
	}
	return nil
}

// readLarge continues the frame in progress (d.need bytes into d.buf).
func (d *Decoder) readLarge(e *logentry.LogEntry) error {
	for len(d.buf) < d.need {
		want := min(d.need-len(d.buf), d.br.Size())
		p, err := d.br.Peek(want)
		d.buf = append(d.buf, p...)
		if _, derr := d.br.Discard(len(p)); derr != nil {
			return fmt.Errorf("fifo: discard frame payload: %w", derr)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(d.buf) < d.need {
				got, need := len(d.buf), d.need
				d.need = -1
				return d.truncated("frame payload", got, need)
			}
			if len(d.buf) < d.need {
				return fmt.Errorf("fifo: read %d-byte frame: %w", d.need, err)
			}
		}
	}
	size := d.need
	d.need = -1
	if err := d.unmarshal(d.buf[:size], e); err != nil {
		return fmt.Errorf("%w: %d-byte frame: %w", ErrCorrupt, size, err)
	}
	return nil
}

// truncated drops whatever is buffered (the stream has ended, so that is the
// partial frame) and returns the ErrTruncated error.
func (d *Decoder) truncated(what string, got, want int) error {
	_, _ = d.br.Discard(d.br.Buffered())
	return fmt.Errorf("%w: %s: got %d of %d bytes: %w", ErrTruncated, what, got, want, io.ErrUnexpectedEOF)
}
