// Package readlogs serves Docker's /LogDriver.ReadLogs from what s3logs
// stored, so that docker logs works with Docker's local cache off (Docker
// turns it off for a plugin that can read).
//
// A request names a container (Info) and a ReadConfig (Since, Until,
// Tail, Follow). The records come from three sources, read in this order:
//
//   - S3: the container's objects, found with package reader from the
//     container's own log-opts (bucket, endpoint, region, prefix), with
//     the segment-age as look-back;
//   - the spool: its sealed segments not yet uploaded and the segment
//     being written, up to the writer's last flush (segment.Spool.Locals).
//     A segment in both places is read from the spool;
//   - for Follow, the records the container's stream stores from the
//     request on (Config.Follow), subscribed before the history is read.
//     The records both the history and the subscription saw (stored
//     while the history was read) are recognised by the history's last
//     record and given once.
//
// Records go out in stored order, which is time order for one container,
// framed as in the FIFO (uint32 length, protobuf LogEntry) with the line's
// newline in Line, as Docker expects from a plugin. Tail (the last N lines;
// negative for all) is applied here because the daemon does not apply it;
// Since and Until are applied here and again by the daemon. A follow ends
// when the container's stream ends (StopLogging), when the client goes
// away, or when it fell 8,192 records behind the stream (logged). Errors
// before the first byte are replied as {"Err": ...} with a non-200 status;
// after it, the stream just ends.
//
// Every request runs in the HTTP server's goroutine; the reader's own
// goroutines end before the handler returns.
package readlogs

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
	"github.com/s3logs/s3logs/driver/logopt"
	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/reader"
	"github.com/s3logs/s3logs/s3client"
	"github.com/s3logs/s3logs/segment"
)

// Follower is a subscription to the records a container's stream stores
// (driver.Follower implements it).
type Follower interface {
	// Records delivers each stored record (a JSON line with its '\n') and
	// is closed when the stream ends or the follower fell behind.
	Records() <-chan []byte
	// Overflowed reports whether Records was closed because the follower
	// fell behind.
	Overflowed() bool
	// Close ends the subscription.
	Close()
}

// Spool lists a container's segments in the spool (*segment.Spool).
type Spool interface {
	Locals(containerID string) ([]segment.Local, error)
}

// Config configures a Server.
type Config struct {
	// Spool is the plugin's spool. Required.
	Spool Spool
	// Follow subscribes to a container's live stream (by full id); ok is
	// false when it has none. Required for Follow requests; nil answers
	// them with the history only.
	Follow func(containerID string) (f Follower, ok bool)
	// Clients creates the S3 clients. Default: a factory with the SDK's
	// standard retries.
	Clients *s3client.Factory
	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
}

// Server is the /LogDriver.ReadLogs handler. It is safe for concurrent
// use.
type Server struct {
	cfg Config
	log *slog.Logger
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Clients == nil {
		cfg.Clients = s3client.NewFactory(s3client.Options{})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger}
}

// Request is the body Docker posts to /LogDriver.ReadLogs (the fields
// s3logs uses).
type Request struct {
	Info struct {
		Config        map[string]string
		ContainerID   string
		ContainerName string
	}
	Config struct {
		Since, Until time.Time
		Tail         int
		Follow       bool
	}
}

// maxBody bounds a request body (Info carries the container's labels and
// environment).
const maxBody = 4 << 20

// ServeHTTP decodes the request and streams the records.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("bad ReadLogs request: %w", err))
		return
	}
	if err := s.Read(r.Context(), &req, w); err != nil {
		s.log.Warn("docker logs failed", "container", short(req.Info.ContainerID), "err", err)
		var se startError
		if errors.As(err, &se) {
			fail(w, http.StatusInternalServerError, se.error)
		}
	}
}

// startError is an error found before anything was written.
type startError struct{ error }

func fail(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"Err": "s3logs: " + err.Error()})
}

func short(id string) string { return id[:min(12, len(id))] }

// flushAt is how many framed bytes are buffered before a write.
const flushAt = 64 << 10

// frameWriter frames records as LogEntry messages.
type frameWriter struct {
	w       io.Writer
	flusher http.Flusher
	buf     []byte
	entry   logentry.LogEntry
	started bool
}

func (f *frameWriter) add(st *record.Stored) {
	f.entry = logentry.LogEntry{Source: st.Source, TimeNano: st.Time.UnixNano(), Line: st.Log}
	n := f.entry.Size()
	off := len(f.buf)
	f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(n))
	f.buf = append(f.buf, make([]byte, n)...)
	f.entry.MarshalToSizedBuffer(f.buf[off+4:])
}

func (f *frameWriter) flush(force bool) error {
	if !force && len(f.buf) < flushAt || len(f.buf) == 0 && f.started {
		return nil
	}
	f.started = true
	_, err := f.w.Write(f.buf)
	f.buf = f.buf[:0]
	if f.flusher != nil {
		f.flusher.Flush()
	}
	return err
}

// Read writes the records req asks for to w (see the package
// documentation). An error it returns before writing anything is a
// startError.
func (s *Server) Read(ctx context.Context, req *Request, w io.Writer) error {
	id := req.Info.ContainerID
	opts, err := logopt.Parse(req.Info.Config)
	if err != nil {
		return startError{err}
	}
	win := reader.Window{Since: req.Config.Since, Until: req.Config.Until}
	var fol Follower
	if req.Config.Follow && s.cfg.Follow != nil {
		if f, ok := s.cfg.Follow(id); ok {
			fol = f
			defer f.Close()
		}
	}
	c, err := s.history(ctx, req, opts, win)
	if err != nil {
		return startError{err}
	}
	fw := &frameWriter{w: w}
	fw.flusher, _ = w.(http.Flusher)
	if err := fw.flush(true); err != nil { // the status line, at once
		return err
	}
	var last []byte
	err = c.reader.Stream(ctx, []*reader.Container{c.container}, win, req.Config.Tail, nil, func(rec *reader.Record) error {
		fw.add(&rec.Stored)
		last = append(last[:0], rec.Raw...)
		return fw.flush(false)
	})
	if err != nil {
		return err
	}
	if err := fw.flush(true); err != nil || fol == nil {
		return err
	}
	return s.follow(ctx, fol, last, win, fw)
}

// source is a container's history and the reader for its objects.
type source struct {
	reader    *reader.Reader
	container *reader.Container
}

// history finds the container's segments in S3 and in the spool.
func (s *Server) history(ctx context.Context, req *Request, opts *logopt.Options, win reader.Window) (*source, error) {
	id := req.Info.ContainerID
	pathStyle := opts.ForcePathStyle
	client, err := s.cfg.Clients.Client(ctx, s3client.Target{Region: opts.Region, Endpoint: opts.Endpoint, PathStyle: pathStyle})
	if err != nil {
		return nil, err
	}
	rd, err := reader.New(reader.Config{Store: client, Bucket: opts.Bucket, Prefix: opts.Prefix, Lookback: opts.SegmentAge + time.Minute})
	if err != nil {
		return nil, err
	}
	// The spool first: a segment uploaded meanwhile is then in the listing.
	locals, err := s.cfg.Spool.Locals(id)
	if err != nil {
		return nil, fmt.Errorf("listing the spool: %w", err)
	}
	c, err := rd.FindContainer(ctx, req.Info.ContainerName, id, win)
	if err != nil {
		return nil, err
	}
	inS3 := map[uint64]bool{}
	for _, sg := range c.Segments {
		inS3[sg.Seq] = true
	}
	var segs []reader.Segment
	local := map[uint64]bool{}
	for _, l := range locals {
		local[l.Meta.Seq] = true
		segs = append(segs, reader.Segment{Key: l.Path, First: l.Meta.FirstTime, Seq: l.Meta.Seq, Growing: l.Growing, Open: openLocal(l, rd)})
	}
	for _, sg := range c.Segments {
		if !local[sg.Seq] {
			segs = append(segs, sg)
		}
	}
	c.Segments = reader.Order(segs, win)
	return &source{reader: rd, container: c}, nil
}

// openLocal opens a spool segment; one that was sealed or uploaded since
// it was listed is read under its new name or from S3.
func openLocal(l segment.Local, rd *reader.Reader) func(ctx context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		f, err := os.Open(l.Path)
		if err == nil {
			return f, nil
		}
		if l.Growing && errors.Is(err, fs.ErrNotExist) {
			if f, err2 := os.Open(l.SealedPath()); err2 == nil {
				return f, nil
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return rd.Open(l.Meta.Key)(ctx)
		}
		return nil, err
	}
}

// follow writes the records the stream stores, skipping those the history
// already gave (up to last, the history's last record).
func (s *Server) follow(ctx context.Context, f Follower, last []byte, win reader.Window, fw *frameWriter) error {
	recs := f.Records()
	// What was stored while the history was read is buffered already.
	var pend [][]byte
drain:
	for {
		select {
		case r, ok := <-recs:
			if !ok {
				break drain
			}
			pend = append(pend, r)
		default:
			break drain
		}
	}
	if last != nil {
		for i := len(pend) - 1; i >= 0; i-- {
			if bytes.Equal(bytes.TrimSuffix(pend[i], []byte("\n")), last) {
				pend = pend[i+1:]
				break
			}
		}
	}
	var scratch []byte
	emit := func(raw []byte) (bool, error) {
		st, sc, err := record.ParseJSON(raw, scratch)
		scratch = sc
		if err != nil {
			return true, nil
		}
		if !win.Until.IsZero() && st.Time.After(win.Until) {
			return false, nil
		}
		if win.Contains(st.Time) {
			fw.add(&st)
		}
		return true, nil
	}
	for _, r := range pend {
		if more, err := emit(r); !more || err != nil {
			return fw.flush(true)
		}
	}
	if err := fw.flush(true); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case r, ok := <-recs:
			if !ok {
				if f.Overflowed() {
					s.log.Warn("docker logs --follow fell behind the container's stream; ended it")
				}
				return fw.flush(true)
			}
			if more, _ := emit(r); !more {
				return fw.flush(true)
			}
			if len(recs) == 0 { // caught up: send what is buffered
				if err := fw.flush(true); err != nil {
					return err
				}
			} else if err := fw.flush(false); err != nil {
				return err
			}
		}
	}
}
