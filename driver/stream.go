package driver

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/s3logs/s3logs/driver/fifo"
	"github.com/s3logs/s3logs/driver/logentry"
	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/segment"
)

// readBufSize is the decoder's buffer: the most a stream takes from its
// FIFO at once. Frames larger than the buffer are assembled by the decoder.
const readBufSize = 64 << 10

// Holding partial lines. The pieces of a line longer than 16 KiB stay
// uncommitted in the FIFO until the line's last piece is stored, so a crash
// cannot lose them; a chain is written out early, as records without a
// newline, once its pieces take more than holdLimit bytes of the FIFO (which
// must keep room for Docker's writes) or once it waited holdTimeout for its
// next piece.
const (
	holdLimit   = 256 << 10
	holdTimeout = time.Second
)

// releaseTimeout is how long bytes of an incomplete frame may wait in the
// FIFO for the rest of their frame before the stream takes them anyway.
const releaseTimeout = 2 * time.Second

// stream is one FIFO and the segment writer its records go to. Only its
// reader goroutine (run) touches its fields, except the atomics and the
// methods documented as safe from other goroutines (stop, interrupt).
type stream struct {
	file      string
	container string      // full container id
	started   time.Time   // when the stream was opened
	hub       hub         // followers of the stored records
	fifo      *os.File    // closed at the end of run; nil in benchmarks
	src       frameSource // what run reads
	// w stores the records; nil for a re-attached stream whose saved
	// options left no usable destination: its records are only counted.
	w         *segment.Writer
	discarded int64 // records counted, not stored, when w is nil
	attrs     []byte
	log       *slog.Logger
	forget    func()
	// reattached: the stream was resumed after a restart, so its first
	// frame may start anywhere and the decoder resynchronises first.
	reattached bool
	// holdMax is how many FIFO bytes a held partial line may take: at
	// most holdLimit, and a quarter of the pipe, so Docker can always
	// write the line's next piece. Zero means holdLimit.
	holdMax int64
	// dedup, when set, drops the records at the head of a re-attached FIFO
	// that the repaired segment already holds.
	dedup *deduper

	// sink receives the stream's counts once per FIFO read (publish);
	// nil in tests that count nothing.
	sink *sharedCounts
	// pend are the counts not yet published; only run touches them.
	pend streamCounts

	stopRequested atomic.Bool   // StopLogging arrived: Docker is done writing
	interrupted   atomic.Bool   // set by interrupt: end at a frame boundary
	seals         atomic.Uint64 // segments sealed by w (any goroutine)

	dec       *fifo.Decoder
	asm       *record.Assembler
	committed int64     // FIFO bytes consumed (stored or released)
	holdFrom  int64     // FIFO offset of the first held frame, -1 if none
	holdSince time.Time // when the first held frame arrived
	idleSince time.Time // first errIdle of the current idle spell
	sealsSeen uint64

	buf        []byte // the JSON line being built; reused
	appendErrs int    // consecutive Append failures, for log throttling
	lastShrink time.Time
	oversized  bool  // a shrink was due but rate-limited
	skipped    int64 // FIFO bytes skipped to resynchronise
}

// hookReader runs the stream's store-then-commit step before every read
// of the FIFO, so everything decoded from earlier reads reaches the segment
// file, and leaves the FIFO, before the reader can block.
type hookReader struct{ s *stream }

func (h hookReader) Read(p []byte) (int, error) {
	h.s.beforeRead()
	return h.s.src.Read(p)
}

// run reads the FIFO to EOF or until interrupted, then seals the segment.
// It is the stream's only goroutine.
func (s *stream) run() {
	s.holdFrom = -1
	s.dec = fifo.NewDecoderOptions(hookReader{s}, fifo.Options{BufSize: readBufSize, Resync: s.reattached})
	s.asm = record.NewAssembler()
	var e logentry.LogEntry
	var err error
	for {
		if s.dec.Buffered() == 0 {
			s.shrink() // the next Decode reads, and may block
		}
		start := s.dec.Offset()
		err = s.dec.Decode(&e)
		if err != nil {
			if s.recoverable(err) {
				continue
			}
			break
		}
		s.idleSince = time.Time{}
		if err = s.asm.Add(&e, s.emit); err != nil {
			break
		}
		switch {
		case !s.asm.Pending():
			s.holdFrom = -1
		case s.holdFrom < 0:
			s.holdFrom, s.holdSince = start, time.Now()
		}
		if n := s.seals.Load(); n != s.sealsSeen {
			// A sealed segment is durable: consume its frames now, so
			// a crash cannot make the FIFO repeat what it holds.
			s.sealsSeen = n
			s.store()
		}
	}
	interrupted := s.interrupted.Load()
	switch {
	case errors.Is(err, io.EOF):
	case interrupted && (errors.Is(err, errInterrupted) || errors.Is(err, os.ErrClosed)):
	default:
		s.log.Error("reading log stream failed; draining the rest so the container never blocks", "file", s.file, "err", err)
		n, derr := drain(s.src)
		if s.sink != nil {
			s.sink.skippedBytes.Add(uint64(n))
		}
		s.log.Error("discarded the rest of a log stream", "discarded_bytes", n, "err", derr)
	}
	if !interrupted {
		// The stream is over: whatever partial line is pending is all
		// there will be of it.
		if ferr := s.asm.Flush(s.emit); ferr != nil {
			s.log.Error("writing the last partial line", "err", ferr)
		}
		s.holdFrom = -1
	}
	s.resolveDedup()
	s.publish()
	if s.appendErrs > 0 {
		s.reportDropped()
	}
	reason := segment.ReasonStop
	if interrupted {
		reason = segment.ReasonShutdown
	}
	if s.w == nil {
		s.log.Error("log stream ended; its records were counted, not stored", "file", s.file, "records", s.discarded)
	} else if cerr := s.w.Close(reason); cerr != nil {
		s.log.Error("sealing segment", "err", cerr)
	}
	// Sealed: consume what the segment holds. Interrupted, the rest of
	// the FIFO (a held partial line, unread frames) stays in the pipe for
	// the next start, starting at a frame boundary.
	s.commit()
	s.hub.close() // followers have everything the stream stored
	if s.fifo != nil {
		s.fifo.Close()
	}
	if c, ok := s.src.(io.Closer); ok {
		c.Close()
	}
	if !interrupted {
		s.forget()
	}
	if s.skipped > 0 {
		s.log.Warn("log stream ended after resynchronising", "file", s.file, "skipped_bytes", s.skipped)
	}
	s.log.Debug("stream ended", "file", s.file, "interrupted", interrupted)
}

// shrinkAbove is the buffer size beyond which a stream gives memory back
// after a spike (a long line), at most every shrinkEvery.
const (
	shrinkAbove = 64 << 10
	shrinkEvery = time.Second
)

// shrink gives back the memory that a long line made the decoder, the
// assembler or the JSON buffer grow to (up to several MiB), so that a
// stream that logged one 1 MiB line does not keep it; streams that keep
// logging long lines regrow their buffers at most once per shrinkEvery.
func (s *stream) shrink() {
	// A long line always passes through the JSON buffer: its size tells
	// whether there is anything to give back.
	if cap(s.buf) <= shrinkAbove {
		return
	}
	now := time.Now()
	if now.Sub(s.lastShrink) < shrinkEvery {
		return
	}
	s.lastShrink = now
	s.dec.Shrink()
	s.asm.Shrink()
	if cap(s.buf) > shrinkAbove {
		s.buf = nil
	}
}

// drain reads and consumes src to EOF (or until interrupted) and returns
// how many bytes it discarded.
func drain(src frameSource) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		if err := src.Release(); err != nil {
			return total, err
		}
		n, err := src.Read(buf)
		total += int64(n)
		switch {
		case err == nil, errors.Is(err, errIdle), errors.Is(err, errHangup):
		case errors.Is(err, io.EOF):
			return total, nil
		default:
			return total, err
		}
	}
}

// recoverable handles a Decode error after which decoding goes on: bytes
// skipped to resynchronise (a corrupt or torn frame, or a re-attach that
// started inside a frame), or an idle FIFO.
func (s *stream) recoverable(err error) bool {
	var skip *fifo.SkipError
	switch {
	case errors.As(err, &skip):
		s.skipped += skip.Bytes
		if s.sink != nil {
			s.sink.skipped(skip)
		}
		s.log.Warn("skipped bytes of the log stream to find the next frame", "file", s.file,
			"skipped_bytes", skip.Bytes, "cause", skip.Cause, "skipped_total", s.skipped)
		return true
	case errors.Is(err, errIdle), errors.Is(err, errHangup):
		s.idle(errors.Is(err, errHangup))
		return true
	}
	return false
}

// idle runs when no new byte arrived while some wait uncommitted in the
// FIFO: a held partial line, or the start of a frame whose rest is late.
// hangup means Docker closed the FIFO, so nothing more will come.
func (s *stream) idle(hangup bool) {
	now := time.Now()
	if s.idleSince.IsZero() {
		s.idleSince = now
	}
	if s.holdFrom >= 0 && (hangup || now.Sub(s.holdSince) >= holdTimeout) {
		s.emitPending()
	}
	// Every repeated frame was in the pipe at the re-attach: once it is
	// idle, an undecided deduplication can only end in "not repeated".
	s.resolveDedup()
	s.store()
	if s.src.Uncommitted() > 0 && (hangup || now.Sub(s.idleSince) >= releaseTimeout) {
		// An incomplete frame that is not getting completed: take it, so
		// the decoder can report it and the stream go on.
		u := s.src.Uncommitted()
		if err := s.src.Release(); err != nil {
			s.log.Error("releasing FIFO bytes", "err", err)
		} else {
			s.committed += u
		}
	}
}

// storeEvery: reading a journal that has more bytes ready, a stream
// stores (flushes its segment and commits) only once this many bytes are
// uncommitted. The records a crash can leave both in the segment and
// uncommitted stay within the tail a restarted plugin deduplicates
// against (16,384 records; Docker's smallest frames take about 27 bytes).
const storeEvery = 256 << 10

// beforeRead is the store-then-commit step run before every read of the
// FIFO or journal. From a journal with more bytes ready, it stores only
// every storeEvery bytes: fewer, larger zstd blocks, while the journal
// keeps the bytes safe.
func (s *stream) beforeRead() {
	limit := s.holdMax
	if limit <= 0 {
		limit = holdLimit
	}
	if s.holdFrom >= 0 && s.dec.Offset()-s.holdFrom > limit {
		s.emitPending()
	}
	if j, ok := s.src.(*journalSource); ok && j.Uncommitted() < storeEvery && j.Ready() > 0 {
		return
	}
	s.store()
}

// emitPending writes out the held partial lines as records without a
// newline, and stops holding them.
func (s *stream) emitPending() {
	if err := s.asm.EmitPending(s.emit); err != nil {
		s.log.Error("writing a pending partial line", "err", err)
	}
	s.holdFrom = -1
}

// store flushes the segment writer, then commits what it stored, and
// publishes the counts.
func (s *stream) store() {
	if s.w != nil {
		if err := s.w.Flush(); err != nil {
			s.log.Error("flushing segment", "err", err)
		}
	}
	s.commit()
	s.publish()
}

// publish adds the counts gathered since the last call to the Driver's.
// It runs once per FIFO read, so counting costs the per-record path no
// atomic operation.
func (s *stream) publish() {
	if s.sink != nil && s.pend != (streamCounts{}) {
		s.sink.add(&s.pend)
		s.pend = streamCounts{}
	}
}

// commit consumes from the FIFO every frame whose records reached the
// segment file: all decoded frames but held partial lines, and none while
// the deduplication at a re-attach is undecided.
func (s *stream) commit() {
	if s.dedup != nil {
		return
	}
	to := s.dec.Offset()
	if s.holdFrom >= 0 && s.holdFrom < to {
		to = s.holdFrom
	}
	if n := to - s.committed; n > 0 {
		if err := s.src.Commit(n); err != nil {
			s.log.Error("consuming stored bytes from the FIFO", "err", err)
			return
		}
		s.committed = to
	}
}

// emit counts one record, encodes it and appends it to the segment, unless
// the deduplication of a re-attached FIFO recognises it as already stored.
func (s *stream) emit(r *record.Record) error {
	k := kindOf(r.Source)
	s.pend.records[k]++
	s.pend.bytes[k] += uint64(len(r.Line))
	if r.Newline {
		s.pend.bytes[k]++
	}
	s.buf = record.AppendJSON(s.buf[:0], r, s.attrs)
	if s.dedup != nil {
		s.dedup.offer(s.buf, r.Time, s.append)
		if s.dedup.done() {
			if n := s.dedup.dropped; n > 0 {
				s.log.Info("re-attached FIFO repeated records the repaired segment holds; dropped them", "file", s.file, "records", n)
			}
			s.dedup = nil
		}
		return nil
	}
	s.append(r.Time, s.buf)
	return nil
}

// resolveDedup ends an undecided deduplication by storing what it holds:
// a duplicate is better than a loss.
func (s *stream) resolveDedup() {
	if s.dedup != nil {
		s.dedup.flush(s.append)
		s.dedup = nil
	}
}

// append stores one encoded record. Errors (a full disk) are logged,
// throttled, and the record is dropped: the FIFO must keep draining so the
// container never blocks on logging. A record the segment had accepted
// before a write error abandoned it is accounted for by the spool's janitor
// ("records lost to a write error"); the others are counted here and
// reported as "log records not stored".
func (s *stream) append(t time.Time, rec []byte) {
	if s.w == nil {
		s.discarded++
		s.pend.unstorable++
		return
	}
	err := s.w.Append(t, rec)
	switch {
	case err == nil:
		s.hub.publish(rec)
		if s.appendErrs > 0 {
			s.reportDropped()
		}
	case errors.Is(err, segment.ErrAbandoned):
		s.log.Error("segment abandoned after a write error; the janitor repairs it", "err", err)
	default:
		s.appendErrs++
		s.pend.notStored++
		if s.appendErrs == 1 {
			s.log.Error("cannot store log records; dropping them until storing works again", "err", err)
		}
	}
}

// reportDropped logs how many records were not stored since the last report.
func (s *stream) reportDropped() {
	s.log.Warn("log records not stored", "dropped", s.appendErrs)
	s.appendErrs = 0
}

// interrupt makes run end at the next frame boundary without reading on:
// what it has not stored stays in the FIFO for the next start. Safe from
// any goroutine.
func (s *stream) interrupt() {
	s.interrupted.Store(true)
	s.src.Interrupt()
}

// RecordTime extracts the "time" field of an s3logs record (the last one in
// the line, which is where json-file puts it). It is the segment package's
// Config.RecordTime, used to restore a recovered segment's last record time.
func RecordTime(rec []byte) (time.Time, bool) {
	const key = `"time":"`
	i := bytes.LastIndex(rec, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	rest := rec[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}
