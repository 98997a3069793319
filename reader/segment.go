package reader

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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

// batchSize is the target size of a batch's buffer.
const batchSize = 256 << 10

// maxLine bounds one stored record (segment.MaxRecordLen is about 36 MiB).
const maxLine = 64 << 20

// batch is a run of decoded records and the memory they point into.
type batch struct {
	recs []Record
	buf  []byte
	err  error
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
	br := bufio.NewReaderSize(dec, 256<<10)
	b := &batch{buf: make([]byte, 0, batchSize)}
	var scratch, long []byte
	for {
		line, rerr := br.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(rerr, bufio.ErrBufferFull) && len(long) <= maxLine {
				line, rerr = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			if s.Growing && (errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, zstd.ErrMagicMismatch) || errors.Is(rerr, zstd.ErrReservedBlockType) || errors.Is(rerr, zstd.ErrCRCMismatch)) {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: %w", s.Key, rerr)
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
			if cap(b.buf)-len(b.buf) < 2*len(line) {
				if len(b.recs) > 0 && !send(b) {
					return ctx.Err()
				}
				b = &batch{buf: make([]byte, 0, max(batchSize, 2*len(line)))}
			}
			start := len(b.buf)
			b.buf = append(b.buf, line...)
			raw := b.buf[start:]
			var st record.Stored
			st, scratch, err = record.ParseJSON(raw, scratch)
			if err != nil {
				b.buf = b.buf[:start]
				if !s.Growing {
					return fmt.Errorf("%s: %w", s.Key, err)
				}
			} else if !w.Contains(st.Time) {
				b.buf = b.buf[:start]
			} else {
				if len(st.Log) > 0 && len(scratch) > 0 && &st.Log[0] == &scratch[0] {
					ls := len(b.buf)
					b.buf = append(b.buf, st.Log...)
					st.Log = b.buf[ls:]
				}
				b.recs = append(b.recs, Record{Container: c, Stored: st, Raw: raw})
			}
		}
		if rerr != nil {
			break // io.EOF; a line without '\n' at the end is a torn write
		}
	}
	if stats != nil {
		stats.ObjectsDone.Add(1)
	}
	if len(b.recs) > 0 && !send(b) {
		return ctx.Err()
	}
	return nil
}
