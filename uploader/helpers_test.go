package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/s3logs/s3logs/segment"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSegment describes a sealed segment to create with makeSegment.
type testSegment struct {
	container string // container id; also the folder name
	seq       uint64
	records   int
	reason    string
	dest      segment.Destination
	// contentMD5 is the sidecar's ContentMD5: "" the file's, as the
	// segment writer computes it; "-" none (segments sealed before it
	// existed); anything else is written as it is.
	contentMD5 string
}

var baseTime = time.Date(2026, 11, 27, 15, 44, 5, 123_000_000, time.UTC)

// makeSegment writes a sealed segment (zstd data file and sidecar, as the
// segment package lays them out) under root and returns it with its records.
func makeSegment(t testing.TB, root string, ts testSegment) (segment.Sealed, []byte) {
	t.Helper()
	dir := filepath.Join(root, ts.container)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	first := baseTime.Add(time.Duration(ts.seq) * time.Second)
	short := ts.container
	if len(short) > 12 {
		short = short[:12]
	}
	name := fmt.Sprintf("%s_%s_%06d%s", first.Format("20060102T150405.000Z"), short, ts.seq, segment.DataSuffix)
	var raw bytes.Buffer
	for i := range ts.records {
		fmt.Fprintf(&raw, `{"log":"container %s segment %d line %d\n","stream":"stdout","time":"%s"}`+"\n",
			ts.container, ts.seq, i, first.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	data := enc.EncodeAll(raw.Bytes(), nil)
	enc.Close()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	reason := ts.reason
	if reason == "" {
		reason = segment.ReasonSize
	}
	m := segment.Meta{
		Version:     segment.MetaVersion,
		Key:         fmt.Sprintf("logs/%s/%s", ts.container, name),
		Destination: ts.dest,
		Container: segment.Container{
			ID: ts.container, Name: "/app-" + short, ImageName: "example/app:1.0", ImageID: "sha256:0123abcd",
		},
		Seq:             ts.seq,
		FirstTime:       first,
		LastTime:        first.Add(time.Duration(ts.records) * time.Millisecond),
		Records:         int64(ts.records),
		RawBytes:        int64(raw.Len()),
		CompressedBytes: int64(len(data)),
		Reason:          reason,
		SealedAt:        first.Add(time.Minute),
	}
	switch ts.contentMD5 {
	case "":
		sum := md5.Sum(data)
		m.ContentMD5 = base64.StdEncoding.EncodeToString(sum[:])
	case "-":
	default:
		m.ContentMD5 = ts.contentMD5
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s := segment.Sealed{Dir: dir, Name: name, Meta: m}
	if err := os.WriteFile(s.MetaPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, raw.Bytes()
}

func exists(t testing.TB, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// fakePutter is an objectPutter whose behaviour is a function field.
// It records the keys of every call and detects concurrent uploads of the
// same key.
type fakePutter struct {
	put func(ctx context.Context, in *s3.PutObjectInput) error

	mu       sync.Mutex
	calls    []string // keys, in call order
	ok       []string // keys whose put returned nil, in order
	inflight map[string]int
	overlap  []string // keys uploaded concurrently with themselves
}

func (f *fakePutter) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	key := *in.Key
	f.mu.Lock()
	if f.inflight == nil {
		f.inflight = make(map[string]int)
	}
	f.calls = append(f.calls, key)
	f.inflight[key]++
	if f.inflight[key] > 1 {
		f.overlap = append(f.overlap, key)
	}
	f.mu.Unlock()
	var err error
	if f.put != nil {
		err = f.put(ctx, in)
	}
	f.mu.Lock()
	f.inflight[key]--
	if err == nil {
		f.ok = append(f.ok, key)
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &s3.PutObjectOutput{}, nil
}

func (f *fakePutter) snapshot() (calls, ok, overlap []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), append([]string(nil), f.ok...), append([]string(nil), f.overlap...)
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	lr := logRecord{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, lr)
	h.mu.Unlock()
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// find returns the records at level whose message is msg.
func (h *logRecorder) find(level slog.Level, msg string) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range h.records {
		if r.level == level && r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond every 5 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startUploader creates and starts an Uploader whose clients are p (if
// not nil), and closes it at the end of the test.
func startUploader(t testing.TB, cfg Config, p objectPutter) *Uploader {
	t.Helper()
	if p != nil {
		cfg.newClient = func(context.Context, segment.Destination) (objectPutter, error) { return p, nil }
	}
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := u.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return u
}

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}
