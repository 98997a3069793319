package reader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/driver/record"
)

// Segment is one segment to read: an uploaded object or a local file.
type Segment struct {
	// Key names the segment in errors: its object key or file path.
	Key string
	// First is the time of its first record (to the millisecond for
	// objects); Seq its sequence number.
	First time.Time
	Seq   uint64
	// Size is its compressed size in bytes, if known.
	Size int64
	// Open opens its compressed bytes. It is called at most once per read.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Growing marks a segment still being written: data cut short at its
	// end is the writer's next flush, not corruption.
	Growing bool
}

func (o Object) segment(r *Reader) Segment {
	return Segment{Key: o.Key, First: o.File.First, Seq: o.File.Seq, Size: o.Size, Open: r.openObject(o.Key)}
}

// Record is one stored record read back.
type Record struct {
	// Container is the container it belongs to.
	Container *Container
	record.Stored
	// Raw is the stored JSON line, without its '\n'.
	Raw []byte
}

// Stats counts a read's progress. Its fields are updated atomically while
// a read runs and may be read at any time.
type Stats struct {
	ObjectsTotal atomic.Int64 // segments selected for reading
	ObjectsDone  atomic.Int64 // segments read to their end
	Bytes        atomic.Int64 // compressed bytes read
	Records      atomic.Int64 // records passed to the caller
}

// batchSize is the size of a batch's buffer; a longer record gets a
// buffer of its own size.
const batchSize = 1 << 20

// maxLine bounds one stored record (segment.MaxRecordLen is about 36 MiB).
const maxLine = 64 << 20

// batch is a run of decoded records and the memory they point into:
// Raw slices point into buf, unescaped Log text into extra.
type batch struct {
	recs  []Record
	buf   []byte
	extra []byte
	err   error
}

// batchPool recycles batches once their records have been handed out.
var batchPool = sync.Pool{New: func() any { return &batch{buf: make([]byte, 0, batchSize)} }}

func newBatch(size int) *batch {
	if size <= batchSize {
		b := batchPool.Get().(*batch)
		b.recs, b.buf, b.extra, b.err = b.recs[:0], b.buf[:0], b.extra[:0], nil
		return b
	}
	return &batch{buf: make([]byte, 0, size)}
}

// release returns b to the pool; its records must no longer be used.
func (b *batch) release() {
	if cap(b.buf) == batchSize {
		clear(b.recs) // drop the *Container references
		batchPool.Put(b)
	}
}

// countingReader counts bytes into a Stats.
type countingReader struct {
	r     io.Reader
	stats *Stats
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.stats != nil {
		c.stats.Bytes.Add(int64(n))
	}
	return n, err
}

// decode streams one segment's records in w into out as batches, then
// closes out. An error is sent as the last batch. It returns early when
// ctx is done.
func decode(ctx context.Context, c *Container, s Segment, w Window, stats *Stats, out chan<- *batch) {
	defer close(out)
	send := func(b *batch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	err := decodeTo(ctx, c, s, w, stats, send)
	if err != nil && ctx.Err() == nil {
		send(&batch{err: err})
	}
}

// decodeTo decompresses a segment straight into batch buffers, splits the
// records in place and parses them, so each byte is copied once after
// decompression. send takes ownership of each batch.
func decodeTo(ctx context.Context, c *Container, s Segment, w Window, stats *Stats, send func(*batch) bool) error {
	body, err := s.Open(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	dec, err := zstd.NewReader(&countingReader{r: body, stats: stats}, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", s.Key, err)
	}
	defer dec.Close()
	b := newBatch(batchSize)
	start := 0 // first byte of b.buf not yet parsed
	var scratch []byte
	for {
		if len(b.buf) == cap(b.buf) {
			// Full: hand over the whole records, carry the partial one.
			rest := b.buf[start:]
			if len(rest) > maxLine {
				return fmt.Errorf("%s: record longer than %d bytes", s.Key, maxLine)
			}
			nb := newBatch(max(batchSize, 2*len(rest)))
			nb.buf = append(nb.buf, rest...)
			b.buf = b.buf[:start]
			if len(b.recs) > 0 {
				if !send(b) {
					return ctx.Err()
				}
			} else {
				b.release()
			}
			b, start = nb, 0
		}
		n, rerr := dec.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		for {
			i := bytes.IndexByte(b.buf[start:], '\n')
			if i < 0 {
				break
			}
			raw := b.buf[start : start+i]
			start += i + 1
			var st record.Stored
			st, scratch, err = record.ParseJSON(raw, scratch)
			if err != nil {
				if !s.Growing {
					return fmt.Errorf("%s: %w", s.Key, err)
				}
				continue
			}
			if !w.Contains(st.Time) {
				continue
			}
			if len(st.Log) > 0 && len(scratch) > 0 && &st.Log[0] == &scratch[0] {
				if cap(b.extra)-len(b.extra) < len(st.Log) {
					b.extra = make([]byte, 0, max(64<<10, len(st.Log))) // earlier records keep the old array
				}
				k := len(b.extra)
				b.extra = append(b.extra, st.Log...)
				st.Log = b.extra[k:]
			}
			b.recs = append(b.recs, Record{Container: c, Stored: st, Raw: raw})
		}
		if rerr == nil {
			continue
		}
		if errors.Is(rerr, io.EOF) {
			break // a record without '\n' at the end is a torn write: dropped
		}
		if s.Growing && (errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, zstd.ErrMagicMismatch) || errors.Is(rerr, zstd.ErrReservedBlockType) || errors.Is(rerr, zstd.ErrCRCMismatch)) {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", s.Key, rerr)
	}
	if stats != nil {
		stats.ObjectsDone.Add(1)
	}
	if len(b.recs) > 0 {
		if !send(b) {
			return ctx.Err()
		}
	} else {
		b.release()
	}
	return nil
}
