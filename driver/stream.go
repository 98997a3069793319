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

// readBufSize is the FIFO read buffer of a stream. A pipe holds 64 KiB, so a
// larger buffer would not make reads bigger, only idle streams heavier;
// frames larger than the buffer are assembled by the decoder.
const readBufSize = 64 << 10

// stream is one FIFO and the segment writer its records go to. Only its
// reader goroutine (run) touches its fields, except shutdown.
type stream struct {
	file   string
	fifo   *os.File  // closed at the end of run and by shutdown
	src    io.Reader // what run reads: fifo, or recorded bytes in benchmarks
	w      *segment.Writer
	attrs  []byte
	log    *slog.Logger
	forget func()

	stopping   atomic.Bool // set by shutdown: the FIFO was closed on purpose
	buf        []byte      // the JSON line being built; reused
	appendErrs int         // consecutive Append failures, for log throttling
}

// flushingReader flushes the segment writer before every read of the FIFO,
// so everything decoded from earlier reads reaches the file before the
// reader can block, and a crash loses at most one read's worth.
type flushingReader struct {
	r     io.Reader
	flush func()
}

func (f flushingReader) Read(p []byte) (int, error) {
	f.flush()
	return f.r.Read(p)
}

// run reads the FIFO to EOF (or until shutdown or a corrupt frame), then
// seals the segment. It is the stream's only goroutine.
func (s *stream) run() {
	dec := fifo.NewDecoder(flushingReader{r: s.src, flush: s.flush}, readBufSize)
	asm := record.NewAssembler()
	var e logentry.LogEntry
	var err error
	corrupt := 0
	for {
		err = dec.Decode(&e)
		if errors.Is(err, fifo.ErrCorrupt) {
			// One bad payload; the framing is intact, so read on.
			if corrupt++; corrupt == 1 || corrupt%1000 == 0 {
				s.log.Error("skipping a log entry that does not decode", "file", s.file, "err", err, "skipped_so_far", corrupt)
			}
			continue
		}
		if err != nil {
			break
		}
		if err = asm.Add(&e, s.emit); err != nil {
			break
		}
	}
	shutdown := s.stopping.Load()
	switch {
	case errors.Is(err, io.EOF):
	case shutdown && errors.Is(err, os.ErrClosed):
	default:
		// A corrupt frame. Keep draining so the container never blocks on a
		// full pipe, but stop decoding: the framing is lost.
		s.log.Error("corrupt log stream; discarding the rest of it", "file", s.file, "err", err)
		if n, derr := io.Copy(io.Discard, s.src); derr != nil && !s.stopping.Load() {
			s.log.Error("draining FIFO", "err", derr, "discarded_bytes", n)
		} else {
			s.log.Error("discarded the rest of a corrupt log stream", "discarded_bytes", n)
		}
	}
	if ferr := asm.Flush(s.emit); ferr != nil {
		s.log.Error("writing the last partial line", "err", ferr)
	}
	if s.appendErrs > 0 {
		s.reportDropped()
	}
	reason := segment.ReasonStop
	if shutdown {
		reason = segment.ReasonShutdown
	}
	if cerr := s.w.Close(reason); cerr != nil {
		s.log.Error("sealing segment", "err", cerr)
	}
	if s.fifo != nil {
		s.fifo.Close()
	}
	if !shutdown {
		s.forget()
	}
	s.log.Debug("stream ended", "file", s.file, "shutdown", shutdown)
}

// emit encodes one record and appends it to the segment. Errors (a full
// disk) are logged, throttled, and the record is dropped: the FIFO must keep
// draining so the container never blocks on logging. A record the segment
// had accepted before a write error abandoned it is accounted for by the
// spool's janitor ("records lost to a write error"); the others are counted
// here and reported as "log records not stored".
func (s *stream) emit(r *record.Record) error {
	s.buf = record.AppendJSON(s.buf[:0], r, s.attrs)
	err := s.w.Append(r.Time, s.buf)
	switch {
	case err == nil:
		if s.appendErrs > 0 {
			s.reportDropped()
		}
	case errors.Is(err, segment.ErrAbandoned):
		s.log.Error("segment abandoned after a write error; the janitor repairs it", "err", err)
	default:
		s.appendErrs++
		if s.appendErrs == 1 {
			s.log.Error("cannot store log records; dropping them until storing works again", "err", err)
		}
	}
	return nil
}

// reportDropped logs how many records were not stored since the last report.
func (s *stream) reportDropped() {
	s.log.Warn("log records not stored", "dropped", s.appendErrs)
	s.appendErrs = 0
}

// flush pushes appended records to the segment file.
func (s *stream) flush() {
	if err := s.w.Flush(); err != nil {
		s.log.Error("flushing segment", "err", err)
	}
}

// shutdown closes the FIFO, which ends run's read with os.ErrClosed.
func (s *stream) shutdown() {
	s.stopping.Store(true)
	s.fifo.Close()
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
