package uploader

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3logs/s3logs/segment"
)

var destA = segment.Destination{Bucket: "bucket-a", Region: "eu-west-1", StorageClass: "STANDARD_IA", SSE: "aws:kms", SSEKMSKeyID: "key-1"}
var destB = segment.Destination{Bucket: "bucket-b", Endpoint: "http://127.0.0.1:1", ForcePathStyle: true}

func s3Error(status int, code string) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "test"},
		},
		RequestID: "r",
	}}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Root: "x", Workers: -1},
		{Root: "x", BackoffBase: time.Hour, BackoffCap: time.Minute},
		{Root: "x", MinThroughput: -5},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	u, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if u.cfg.Workers != 4 || u.cfg.BackoffBase != time.Second || u.cfg.BackoffCap != 5*time.Minute ||
		u.cfg.AttemptTimeout != 30*time.Second || u.cfg.MinThroughput != 1<<20 {
		t.Errorf("defaults: %+v", u.cfg)
	}
	if err := u.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := u.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v", err)
	}
}

// TestUploadRemovesAfterSuccess checks the request a segment becomes and
// that the local files go only after success.
func TestUploadRemovesAfterSuccess(t *testing.T) {
	root := t.TempDir()
	seg, _ := makeSegment(t, root, testSegment{container: "c1", seq: 7, records: 50, dest: destA})
	data, err := os.ReadFile(seg.Path())
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	var got *s3.PutObjectInput
	var body []byte
	p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
		if !exists(t, seg.Path()) || !exists(t, seg.MetaPath()) {
			t.Error("segment removed before the upload was confirmed")
		}
		got = in
		var err error
		body, err = io.ReadAll(in.Body)
		return err
	}}
	u := startUploader(t, Config{Root: root}, p)
	waitFor(t, 5*time.Second, "upload", func() bool { return u.Pending() == 0 })
	if exists(t, seg.Path()) || exists(t, seg.MetaPath()) {
		t.Error("segment still on disk after upload")
	}
	if *got.Bucket != "bucket-a" || *got.Key != seg.Meta.Key || *got.ContentType != "application/zstd" ||
		got.ContentEncoding != nil || *got.ContentLength != int64(len(data)) ||
		*got.ContentMD5 != base64.StdEncoding.EncodeToString(sum[:]) ||
		got.StorageClass != "STANDARD_IA" || got.ServerSideEncryption != "aws:kms" || *got.SSEKMSKeyId != "key-1" {
		t.Errorf("unexpected request %+v", got)
	}
	if string(body) != string(data) {
		t.Error("body differs from the file")
	}
	if got.Metadata["seq"] != "7" || got.Metadata["records"] != "50" || got.Metadata["container-id"] != "c1" {
		t.Errorf("metadata %v", got.Metadata)
	}
}

// TestMetadataHostile checks that metadata stays ASCII, under 2 KB, and
// decodes back.
func TestMetadataHostile(t *testing.T) {
	long := strings.Repeat("ü", 2000)
	tests := []struct{ name, image string }{
		{"/plain", "nginx:1.27"},
		{"/naïve-日本", "registry.example/ünï:ß"},
		{"/ctl\x00\r\n\x1b[31m", "img\twith tab and %41"},
		{"/" + long, strings.Repeat("i", 5000)},
		{"/ leading and trailing ", "x"},
		{"/bad\xff\xfeutf8", "y"},
	}
	for _, tt := range tests {
		m := segment.Meta{
			Container: segment.Container{ID: strings.Repeat("a", 64), Name: tt.name, ImageName: tt.image, ImageID: "sha256:" + strings.Repeat("b", 64)},
			FirstTime: baseTime, LastTime: baseTime.Add(time.Hour), Records: 1 << 40, RawBytes: 1 << 50, Seq: 1<<64 - 1, Reason: segment.ReasonStop,
		}
		md := Metadata(m)
		total := 0
		for k, v := range md {
			total += len(k) + len(v)
			for i := 0; i < len(v); i++ {
				if v[i] <= 0x20 || v[i] > 0x7e {
					t.Errorf("%q: %s has byte %#x", tt.name, k, v[i])
				}
			}
		}
		if total >= 2048 {
			t.Errorf("%q: metadata is %d bytes", tt.name, total)
		}
		if len(tt.name) < 100 {
			name, err := url.PathUnescape(md["container-name"])
			if err != nil || name != strings.TrimPrefix(tt.name, "/") {
				t.Errorf("container-name %q decodes to %q, %v", md["container-name"], name, err)
			}
		} else if _, err := url.PathUnescape(md["container-name"]); err != nil {
			t.Errorf("cut value does not decode: %v", err)
		}
		if md["first-time"] != "2026-11-27T15:44:05.123Z" || md["reason"] != "stop" || md["seq"] != "18446744073709551615" {
			t.Errorf("metadata %v", md)
		}
	}
}

// TestFairness: one container with 100 queued segments and another with 1:
// the second goes within the first few uploads.
func TestFairness(t *testing.T) {
	root := t.TempDir()
	for i := range 100 {
		makeSegment(t, root, testSegment{container: "busy", seq: uint64(i), records: 1, dest: destA})
	}
	quiet, _ := makeSegment(t, root, testSegment{container: "quiet", seq: 500, records: 1, dest: destA})
	p := &fakePutter{put: func(context.Context, *s3.PutObjectInput) error { time.Sleep(time.Millisecond); return nil }}
	u := startUploader(t, Config{Root: root, Workers: 2}, p)
	waitFor(t, 20*time.Second, "all uploads", func() bool { return u.Pending() == 0 })
	calls, _, _ := p.snapshot()
	pos := slices.Index(calls, quiet.Meta.Key)
	if pos < 0 || pos > 3 {
		t.Fatalf("quiet container's segment uploaded at position %d of %d", pos, len(calls))
	}
	if len(calls) != 101 {
		t.Errorf("%d calls, want 101", len(calls))
	}
}

// TestUrgentFirst: a segment sealed because its container stopped goes
// ahead of the backlog, and an urgent duplicate Enqueue promotes a queued
// segment.
func TestUrgentFirst(t *testing.T) {
	root := t.TempDir()
	var backlog []segment.Sealed
	for i := range 10 {
		s, _ := makeSegment(t, root, testSegment{container: "a", seq: uint64(i), records: 1, dest: destA})
		backlog = append(backlog, s)
		s, _ = makeSegment(t, root, testSegment{container: "b", seq: uint64(i), records: 1, dest: destA})
		backlog = append(backlog, s)
	}
	gate := make(chan struct{})
	var first sync.Once
	p := &fakePutter{put: func(context.Context, *s3.PutObjectInput) error {
		first.Do(func() { <-gate })
		return nil
	}}
	u := startUploader(t, Config{Root: root, Workers: 1}, p)
	waitFor(t, 5*time.Second, "first upload to start", func() bool { c, _, _ := p.snapshot(); return len(c) == 1 })
	stopped, _ := makeSegment(t, root, testSegment{container: "c", seq: 1, records: 1, reason: segment.ReasonStop, dest: destA})
	u.Enqueue(stopped, true)
	promoted := backlog[len(backlog)-1] // last in b's queue
	u.Enqueue(promoted, true)
	close(gate)
	waitFor(t, 5*time.Second, "all uploads", func() bool { return u.Pending() == 0 })
	calls, _, _ := p.snapshot()
	if len(calls) != 21 || calls[1] != stopped.Meta.Key || calls[2] != promoted.Meta.Key {
		t.Fatalf("order %v", calls[:3])
	}
}

// TestDuplicates: the start-up scan and several notifications of the same
// segment upload it once, never concurrently, and a late notification of
// an uploaded segment is dropped quietly.
func TestDuplicates(t *testing.T) {
	root := t.TempDir()
	var segs []segment.Sealed
	for i := range 5 {
		s, _ := makeSegment(t, root, testSegment{container: "d", seq: uint64(i), records: 1, dest: destA})
		segs = append(segs, s)
	}
	release := make(chan struct{})
	p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
		<-release
		return nil
	}}
	u, err := New(Config{Root: root, Workers: 4, newClient: func(context.Context, segment.Destination) (objectPutter, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs { // notifications before Start, then the scan finds them too
		u.Enqueue(s, false)
		u.Enqueue(s, true)
	}
	if err := u.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, s := range segs {
			u.Enqueue(s, false)
		}
	}
	if got := u.Pending(); got != 5 {
		t.Errorf("Pending = %d, want 5", got)
	}
	close(release)
	waitFor(t, 5*time.Second, "uploads", func() bool { return u.Pending() == 0 })
	u.Enqueue(segs[0], true) // stale notification: file is gone
	waitFor(t, 5*time.Second, "stale notification dropped", func() bool { return u.Pending() == 0 })
	if err := u.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls, ok, overlap := p.snapshot()
	if len(calls) != 5 || len(ok) != 5 || len(overlap) != 0 {
		t.Errorf("calls %d, ok %d, overlapping %v", len(calls), len(ok), overlap)
	}
}

// TestCloseDeadline: Close lets in-flight uploads finish until its
// deadline, then cancels them; nothing unconfirmed is deleted and the
// queue stays on disk.
func TestCloseDeadline(t *testing.T) {
	t.Run("finishes in-flight", func(t *testing.T) {
		root := t.TempDir()
		var segs []segment.Sealed
		for i := range 6 {
			s, _ := makeSegment(t, root, testSegment{container: fmt.Sprint("c", i%3), seq: uint64(i), records: 1, dest: destA})
			segs = append(segs, s)
		}
		started := make(chan struct{}, 10)
		p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
			started <- struct{}{}
			time.Sleep(100 * time.Millisecond)
			return nil
		}}
		u := startUploader(t, Config{Root: root, Workers: 2}, p)
		<-started
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := u.Close(ctx); err != nil {
			t.Fatal(err)
		}
		calls, ok, _ := p.snapshot()
		if len(calls) != 2 || len(ok) != 2 {
			t.Fatalf("calls %v ok %v, want the 2 in-flight uploads", calls, ok)
		}
		left := 0
		for _, s := range segs {
			if exists(t, s.Path()) {
				left++
				if slices.Contains(ok, s.Meta.Key) {
					t.Errorf("%s uploaded but kept", s.Meta.Key)
				}
			} else if !slices.Contains(ok, s.Meta.Key) {
				t.Errorf("%s removed without upload", s.Meta.Key)
			}
		}
		if left != 4 || u.Pending() != 4 {
			t.Errorf("left %d, Pending %d; want 4", left, u.Pending())
		}
		u.Enqueue(segs[0], true) // after Close: ignored
		if u.Pending() != 4 {
			t.Errorf("Enqueue after Close changed Pending to %d", u.Pending())
		}
	})
	t.Run("deadline", func(t *testing.T) {
		root := t.TempDir()
		seg, _ := makeSegment(t, root, testSegment{container: "hang", seq: 1, records: 1, dest: destA})
		started := make(chan struct{})
		p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
			close(started)
			<-ctx.Done()
			return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &smithyhttp.RequestSendError{Err: ctx.Err()}}
		}}
		u := startUploader(t, Config{Root: root, Workers: 2}, p)
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := u.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want DeadlineExceeded", err)
		}
		// Close must give up at its 100 ms deadline instead of waiting for
		// the hung upload; 5 s catches a wait for it, or a grace of its
		// own, with room for a loaded machine.
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close took %s with a 100 ms deadline", d)
		}
		if !exists(t, seg.Path()) || !exists(t, seg.MetaPath()) || u.Pending() != 1 {
			t.Errorf("cancelled segment not kept (Pending %d)", u.Pending())
		}
	})
}

// TestFailuresKeepSegments: permanent and retryable failures never delete
// anything; a permanent error is logged once per backoff step, not once per
// segment; other destinations keep going; recovery uploads everything.
func TestFailuresKeepSegments(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		level slog.Level
		msg   string
	}{
		{"NoSuchBucket", s3Error(404, "NoSuchBucket"), slog.LevelError, "uploader: upload refused, segment kept"},
		{"SlowDown", s3Error(503, "SlowDown"), slog.LevelWarn, "uploader: upload failed, segment kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var broken, healthy []segment.Sealed
			for i := range 10 {
				s, _ := makeSegment(t, root, testSegment{container: fmt.Sprint("x", i%2), seq: uint64(i), records: 3, dest: destA})
				broken = append(broken, s)
				s, _ = makeSegment(t, root, testSegment{container: fmt.Sprint("y", i%2), seq: uint64(i), records: 3, dest: destB})
				healthy = append(healthy, s)
			}
			var failing atomic.Bool
			failing.Store(true)
			p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
				if *in.Bucket == destA.Bucket && failing.Load() {
					return tc.err
				}
				return nil
			}}
			logs := &logRecorder{}
			const slow = 80 * time.Millisecond
			u := startUploader(t, Config{Root: root, Workers: 4, Logger: slog.New(logs), BackoffBase: 5 * time.Millisecond, BackoffCap: slow}, p)
			waitFor(t, 5*time.Second, "healthy destination", func() bool { return u.Pending() == len(broken) })
			time.Sleep(10 * slow)
			// Logs first: every logged failure had its call before, so the
			// count of calls taken after cannot be below it.
			logged := logs.find(tc.level, tc.msg)
			calls, _, _ := p.snapshot()
			failed := 0
			for _, k := range calls {
				if strings.HasPrefix(k, "logs/x") {
					failed++
				}
			}
			for _, s := range broken {
				if !exists(t, s.Path()) || !exists(t, s.MetaPath()) {
					t.Fatalf("%s deleted while failing", s.Meta.Key)
				}
			}
			for _, s := range healthy {
				if exists(t, s.Path()) {
					t.Errorf("healthy destination's %s not uploaded", s.Meta.Key)
				}
			}
			// At most 4 attempts were in flight when the destination first
			// failed; after that one probe per step, each logged once, and
			// one more may have started between the two snapshots.
			if len(logged) < 2 || len(logged) > failed || failed > len(logged)+4 {
				t.Errorf("%d failed attempts, %d logged", failed, len(logged))
			}
			if tc.level == slog.LevelError && failed > 15 {
				t.Errorf("%d attempts in %s with a %s slow schedule", failed, 10*slow, slow)
			}
			r := logged[0]
			if r.attrs["bucket"] != destA.Bucket || !strings.HasPrefix(r.attrs["key"].(string), "logs/x") || r.attrs["code"] != tc.name {
				t.Errorf("log record %+v", r.attrs)
			}
			failing.Store(false)
			waitFor(t, 5*time.Second, "recovery", func() bool { return u.Pending() == 0 })
			for _, s := range broken {
				if exists(t, s.Path()) {
					t.Errorf("%s not uploaded after recovery", s.Meta.Key)
				}
			}
			if len(logs.find(slog.LevelInfo, "uploader: destination recovered")) != 1 {
				t.Error("recovery not logged once")
			}
		})
	}
}

// TestDestinationBackoff: after a failure, no attempt reaches the
// destination before its backoff has passed (controlled clock), while
// another destination keeps uploading.
func TestDestinationBackoff(t *testing.T) {
	root := t.TempDir()
	for i := range 3 {
		makeSegment(t, root, testSegment{container: fmt.Sprint("a", i), seq: 1, records: 1, dest: destA})
	}
	clk := &fakeClock{now: baseTime}
	var fail atomic.Bool
	fail.Store(true)
	p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
		if fail.Load() {
			return s3Error(500, "InternalError")
		}
		return nil
	}}
	maxRand := func(m int64) int64 { return m - 1 }
	u := startUploader(t, Config{Root: root, Workers: 1, BackoffBase: time.Second, BackoffCap: time.Minute, clock: clk, randN: maxRand}, p)
	waitFor(t, 5*time.Second, "first attempt", func() bool { c, _, _ := p.snapshot(); return len(c) == 1 })
	time.Sleep(50 * time.Millisecond)
	if c, _, _ := p.snapshot(); len(c) != 1 {
		t.Fatalf("%d attempts before the backoff passed", len(c))
	}
	clk.Advance(999 * time.Millisecond) // first step: up to 1 s
	time.Sleep(50 * time.Millisecond)
	if c, _, _ := p.snapshot(); len(c) != 1 {
		t.Fatalf("%d attempts before the backoff passed", len(c))
	}
	clk.Advance(time.Millisecond)
	waitFor(t, 5*time.Second, "second attempt", func() bool { c, _, _ := p.snapshot(); return len(c) == 2 })
	// Second step: 2 s.
	clk.Advance(1999 * time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	if c, _, _ := p.snapshot(); len(c) != 2 {
		t.Fatalf("attempts %v", c)
	}
	fail.Store(false)
	clk.Advance(time.Millisecond)
	waitFor(t, 5*time.Second, "uploads after recovery", func() bool { return u.Pending() == 0 })
}

// TestLocalReadError: a segment that cannot be read is kept and retried on
// its own schedule without blocking its destination.
func TestLocalReadError(t *testing.T) {
	root := t.TempDir()
	bad, _ := makeSegment(t, root, testSegment{container: "r", seq: 1, records: 1, dest: destA})
	good, _ := makeSegment(t, root, testSegment{container: "r", seq: 2, records: 1, dest: destA})
	// Replace the data file with a folder: open works, read fails.
	if err := os.Remove(bad.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(bad.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	p := &fakePutter{}
	obs := &attempts{}
	u := startUploader(t, Config{Root: root, Workers: 1, Logger: slog.New(logs), BackoffBase: 10 * time.Millisecond, BackoffCap: 20 * time.Millisecond, Observer: obs}, p)
	u.Enqueue(bad, false) // the scan lists files only
	waitFor(t, 5*time.Second, "good segment", func() bool { return !exists(t, good.Path()) })
	waitFor(t, 5*time.Second, "retries", func() bool { return len(logs.find(slog.LevelError, "uploader: cannot read segment, kept")) >= 3 })
	// The Observer hears of each failed read, as a local error that is
	// not the destination's: it stays healthy.
	var local int
	for _, a := range obs.list() {
		if a.Result == ResultLocal {
			if a.Code != "LocalError" || a.Retry != (local > 0) || a.Bucket != destA.Bucket {
				t.Errorf("local error reported as %+v", a)
			}
			local++
		}
	}
	if local < 3 || len(u.Stats().Failing) != 0 {
		t.Errorf("%d local errors observed, failing destinations %+v", local, u.Stats().Failing)
	}
	if !exists(t, bad.Path()) || !exists(t, bad.MetaPath()) || u.Pending() != 1 {
		t.Error("unreadable segment not kept")
	}
	if c, _, _ := p.snapshot(); len(c) != 1 {
		t.Errorf("calls %v", c)
	}
}

// TestStartContextCancel: cancelling Start's context stops the workers
// and keeps the segments.
func TestStartContextCancel(t *testing.T) {
	root := t.TempDir()
	seg, _ := makeSegment(t, root, testSegment{container: "z", seq: 1, records: 1, dest: destA})
	started := make(chan struct{})
	p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
		close(started)
		<-ctx.Done()
		return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &smithyhttp.RequestSendError{Err: ctx.Err()}}
	}}
	u, err := New(Config{Root: root, newClient: func(context.Context, segment.Destination) (objectPutter, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := u.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u.Start(ctx); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v", err)
	}
	<-started
	cancel()
	if err := u.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !exists(t, seg.Path()) || u.Pending() != 1 {
		t.Error("segment not kept")
	}
}

// TestDrain: Drain uploads the whole queue and what is enqueued while it
// waits, urgent segments first; a destination in backoff gets one probe at
// once instead of after its wait; Drain returns at its deadline when a
// destination stays down, leaving the segments on disk.
func TestDrain(t *testing.T) {
	t.Run("empties the queue", func(t *testing.T) {
		root := t.TempDir()
		for i := range 20 {
			makeSegment(t, root, testSegment{container: fmt.Sprint("c", i%4), seq: uint64(i), records: 1, dest: destA})
		}
		gate := make(chan struct{})
		p := &fakePutter{put: func(context.Context, *s3.PutObjectInput) error { <-gate; return nil }}
		// One worker: with two, the one that took the urgent segment can
		// be descheduled before its PutObject while the other uploads
		// several more, so call order would not show take order.
		u := startUploader(t, Config{Root: root, Workers: 1}, p)
		late, _ := makeSegment(t, root, testSegment{container: "stopped", seq: 1, records: 1, reason: segment.ReasonStop, dest: destA})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- u.Drain(ctx) }()
		u.Enqueue(late, true)
		close(gate)
		if err := <-done; err != nil {
			t.Fatalf("Drain = %v", err)
		}
		calls, ok, _ := p.snapshot()
		if len(ok) != 21 || u.Pending() != 0 {
			t.Fatalf("uploaded %d of 21, Pending %d", len(ok), u.Pending())
		}
		// At most one upload was in flight when it was queued; it is taken
		// next, ahead of the 19 or 20 segments queued before it.
		if i := slices.Index(calls, late.Meta.Key); i < 0 || i > 1 {
			t.Errorf("the stopped container's segment went up at position %d, want 0 or 1", i)
		}
	})
	t.Run("probes a failing destination at once", func(t *testing.T) {
		root := t.TempDir()
		makeSegment(t, root, testSegment{container: "a", seq: 1, records: 1, dest: destA})
		clk := &fakeClock{now: baseTime}
		var fail atomic.Bool
		fail.Store(true)
		p := &fakePutter{put: func(context.Context, *s3.PutObjectInput) error {
			if fail.Load() {
				return s3Error(503, "SlowDown")
			}
			return nil
		}}
		maxRand := func(m int64) int64 { return m - 1 }
		u := startUploader(t, Config{Root: root, Workers: 1, BackoffBase: time.Minute, BackoffCap: time.Hour, clock: clk, randN: maxRand}, p)
		waitFor(t, 5*time.Second, "first attempt", func() bool { c, _, _ := p.snapshot(); return len(c) == 1 })
		time.Sleep(20 * time.Millisecond)
		fail.Store(false) // S3 is back, but the destination waits a minute
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := u.Drain(ctx); err != nil {
			t.Fatalf("Drain = %v (the fake clock never advanced: the backoff was not cut short)", err)
		}
		if c, ok, _ := p.snapshot(); len(c) != 2 || len(ok) != 1 {
			t.Errorf("attempts %v ok %v", c, ok)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		root := t.TempDir()
		seg, _ := makeSegment(t, root, testSegment{container: "a", seq: 1, records: 1, dest: destA})
		p := &fakePutter{put: func(context.Context, *s3.PutObjectInput) error { return s3Error(503, "SlowDown") }}
		u := startUploader(t, Config{Root: root, Workers: 1, BackoffBase: 10 * time.Millisecond, BackoffCap: 20 * time.Millisecond}, p)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := u.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain = %v, want DeadlineExceeded", err)
		}
		if !exists(t, seg.Path()) || u.Pending() != 1 {
			t.Errorf("segment not kept (Pending %d)", u.Pending())
		}
	})
	t.Run("not running", func(t *testing.T) {
		u, err := New(Config{Root: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Drain(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Drain before Start = %v, want ErrClosed", err)
		}
	})
}

// TestStartUsesScan: Start queues what Config.Scan lists, not what it
// would find itself.
func TestStartUsesScan(t *testing.T) {
	root := t.TempDir()
	listed, _ := makeSegment(t, root, testSegment{container: "listed", seq: 1, records: 1, dest: destA})
	unlisted, _ := makeSegment(t, root, testSegment{container: "unlisted", seq: 1, records: 1, dest: destA})
	p := &fakePutter{put: func(context.Context, *s3.PutObjectInput) error { return nil }}
	u := startUploader(t, Config{Root: root, Workers: 1, Scan: func() ([]segment.Sealed, error) { return []segment.Sealed{listed}, nil }}, p)
	waitFor(t, 5*time.Second, "the listed upload", func() bool { return u.Pending() == 0 })
	calls, _, _ := p.snapshot()
	if len(calls) != 1 || calls[0] != listed.Meta.Key || !exists(t, unlisted.Path()) {
		t.Errorf("uploads %v; want only %s", calls, listed.Meta.Key)
	}
}
