package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3logs/s3logs/internal/miniotest"
	"github.com/s3logs/s3logs/s3client"
	"github.com/s3logs/s3logs/segment"
)

// The tests in this file run against a real MinIO server (built on demand
// by miniotest). They never skip: CI runs them.

func minioDest(srv *miniotest.Server, bucket string) segment.Destination {
	return segment.Destination{Bucket: bucket, Endpoint: srv.Endpoint, ForcePathStyle: true}
}

// confirmingPutter wraps a real client, records confirmed keys and checks,
// at every call, that no segment left the disk without confirmation.
type confirmingPutter struct {
	delay time.Duration

	mu        sync.Mutex
	next      objectPutter
	attempts  int
	confirmed []string
}

func (c *confirmingPutter) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	c.mu.Lock()
	c.attempts++
	next := c.next
	c.mu.Unlock()
	time.Sleep(c.delay)
	out, err := next.PutObject(ctx, in, opts...)
	if err == nil {
		c.mu.Lock()
		c.confirmed = append(c.confirmed, *in.Key)
		c.mu.Unlock()
	}
	return out, err
}

func (c *confirmingPutter) snapshot() (attempts int, confirmed []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts, append([]string(nil), c.confirmed...)
}

// wrapRealClients makes cfg use the real client factory, its client
// wrapped by cp (the tests use one destination).
func wrapRealClients(cfg *Config, cp *confirmingPutter) func() {
	f := s3client.NewFactory(s3client.Options{MaxAttempts: 1})
	cfg.newClient = func(ctx context.Context, d segment.Destination) (objectPutter, error) {
		c, err := f.Client(ctx, targetOf(d))
		if err != nil {
			return nil, err
		}
		cp.mu.Lock()
		cp.next = c
		cp.mu.Unlock()
		return cp, nil
	}
	return f.CloseIdle
}

func listKeys(t *testing.T, client *s3.Client, bucket string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	return keys
}

// TestMinIOUpload uploads through the real client factory and checks the
// object: headers, metadata, ETag (MD5) and `zstd -dc` of the download.
func TestMinIOUpload(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	root := t.TempDir()
	var segs []segment.Sealed
	var raws [][]byte
	for i := range 3 {
		s, raw := makeSegment(t, root, testSegment{container: "3f2a9c1b7d4e" + fmt.Sprint(i), seq: uint64(40 + i), records: 2000, reason: segment.ReasonAge, dest: minioDest(srv, "logs")})
		segs, raws = append(segs, s), append(raws, raw)
	}
	logs := &logRecorder{}
	start := time.Now()
	u := startUploader(t, Config{Root: root, Logger: slog.New(logs)}, nil)
	waitFor(t, 30*time.Second, "uploads", func() bool { return u.Pending() == 0 })
	t.Logf("3 segments uploaded in %s", time.Since(start))
	if n := len(logs.find(slog.LevelDebug, "uploader: uploaded")); n != 3 {
		t.Errorf("%d debug upload logs, want 3", n)
	}
	client := srv.Client(t)
	ctx := context.Background()
	for i, s := range segs {
		if exists(t, s.Path()) || exists(t, s.MetaPath()) {
			t.Errorf("%s still on disk", s.Path())
		}
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("logs"), Key: aws.String(s.Meta.Key)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(head.ContentType) != "application/zstd" || aws.ToString(head.ContentEncoding) != "" {
			t.Errorf("Content-Type %q, Content-Encoding %q", aws.ToString(head.ContentType), aws.ToString(head.ContentEncoding))
		}
		want := Metadata(s.Meta)
		if len(head.Metadata) != len(want) {
			t.Errorf("metadata %v, want %v", head.Metadata, want)
		}
		for k, v := range want {
			if head.Metadata[k] != v {
				t.Errorf("metadata %s = %q, want %q", k, head.Metadata[k], v)
			}
		}
		obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs"), Key: aws.String(s.Meta.Key)})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(data)
		if etag := aws.ToString(head.ETag); etag != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("ETag %s, MD5 of the object %x", etag, sum)
		}
		file := filepath.Join(t.TempDir(), "obj.zst")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("zstd", "-dc", file).Output()
		if err != nil {
			t.Fatalf("zstd -dc: %v", err)
		}
		if !bytes.Equal(out, raws[i]) {
			t.Errorf("zstd -dc of %s differs from the records", s.Meta.Key)
		}
	}
}

// TestMinIORefusesBadDigest checks that the server refuses a body that does
// not match Content-MD5 (what a corrupted upload looks like), with the
// uploader's real client and request, and that the error is retryable.
func TestMinIORefusesBadDigest(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	seg, _ := makeSegment(t, t.TempDir(), testSegment{container: "digest", seq: 1, records: 100, dest: minioDest(srv, "logs")})
	f := s3client.NewFactory(s3client.Options{MaxAttempts: 1})
	defer f.CloseIdle()
	client, err := f.Client(context.Background(), targetOf(seg.Meta.Destination))
	if err != nil {
		t.Fatal(err)
	}
	sum, size, err := fileMD5(seg.Path())
	if err != nil {
		t.Fatal(err)
	}
	file, err := seg.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	wrong := md5.Sum([]byte("something else"))
	badIn := putInput(seg, file, size, base64Std(wrong[:]))
	_, err = client.PutObject(context.Background(), badIn)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "BadDigest" {
		t.Fatalf("PutObject with a wrong Content-MD5: %v, want BadDigest", err)
	}
	if c := classify(context.Background(), err); c != classRetryable {
		t.Errorf("BadDigest classified %v", c)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(context.Background(), putInput(seg, file, size, sum)); err != nil {
		t.Fatalf("PutObject with the right Content-MD5: %v", err)
	}
}

// TestMinIORestart stops MinIO in the middle of a run and restarts it:
// every segment ends up under its one key, none under two, and no local
// file disappears before S3 confirmed it.
func TestMinIORestart(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	root := t.TempDir()
	var segs []segment.Sealed
	for i := range 30 {
		s, _ := makeSegment(t, root, testSegment{container: fmt.Sprint("ctr", i%3), seq: uint64(i), records: 500, dest: minioDest(srv, "logs")})
		segs = append(segs, s)
	}
	cfg := Config{Root: root, Workers: 4, BackoffBase: 20 * time.Millisecond, BackoffCap: 300 * time.Millisecond, AttemptTimeout: 5 * time.Second}
	cp := &confirmingPutter{delay: 30 * time.Millisecond}
	closeIdle := wrapRealClients(&cfg, cp)
	defer closeIdle()
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	start := time.Now()
	u := startUploader(t, cfg, nil)

	stopChecking := make(chan struct{})
	checked := make(chan struct{})
	go func() { // no local file disappears before its upload is confirmed
		defer close(checked)
		for {
			select {
			case <-stopChecking:
				return
			case <-time.After(2 * time.Millisecond):
			}
			// Stat first: a file missing now was confirmed before now.
			var gone []string
			for _, s := range segs {
				if _, err := os.Stat(s.Path()); os.IsNotExist(err) {
					gone = append(gone, s.Meta.Key)
				}
			}
			_, confirmed := cp.snapshot()
			for _, k := range gone {
				if !slices.Contains(confirmed, k) {
					t.Errorf("%s removed before confirmation", k)
				}
			}
		}
	}()
	waitFor(t, 30*time.Second, "some uploads", func() bool { return u.Pending() <= 24 })
	srv.Stop()
	time.Sleep(time.Second)
	mid := u.Pending()
	if mid == 0 {
		t.Fatal("all segments uploaded before MinIO stopped; the test proves nothing")
	}
	attemptsDown, _ := cp.snapshot()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "uploads after restart", func() bool { return u.Pending() == 0 })
	close(stopChecking)
	<-checked
	attempts, confirmed := cp.snapshot()
	t.Logf("30 segments; %d pending while MinIO was down; %d attempts (%d before restart); %s in all",
		mid, attempts, attemptsDown, time.Since(start))
	if len(logs.find(slog.LevelWarn, "uploader: upload failed, segment kept")) == 0 {
		t.Error("no failure logged while MinIO was down")
	}
	keys := listKeys(t, srv.Client(t), "logs")
	var want []string
	for _, s := range segs {
		want = append(want, s.Meta.Key)
		if exists(t, s.Path()) {
			t.Errorf("%s still on disk", s.Path())
		}
	}
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("bucket holds %d keys, want exactly the %d segment keys", len(keys), len(want))
	}
	slices.Sort(confirmed)
	if len(slices.Compact(confirmed)) != 30 {
		t.Errorf("%d distinct confirmed keys", len(confirmed))
	}
}

// TestMinIONoSuchBucket: uploads to a missing bucket keep the segments,
// log one clear error per slow step, and succeed once the bucket exists.
func TestMinIONoSuchBucket(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	root := t.TempDir()
	var segs []segment.Sealed
	for i := range 5 {
		s, _ := makeSegment(t, root, testSegment{container: fmt.Sprint("nb", i%2), seq: uint64(i), records: 10, dest: minioDest(srv, "late")})
		segs = append(segs, s)
	}
	const slow = 400 * time.Millisecond
	cfg := Config{Root: root, Workers: 4, BackoffBase: 10 * time.Millisecond, BackoffCap: slow}
	cp := &confirmingPutter{}
	closeIdle := wrapRealClients(&cfg, cp)
	defer closeIdle()
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	u := startUploader(t, cfg, nil)
	time.Sleep(5 * slow)
	attempts, _ := cp.snapshot()
	errs := logs.find(slog.LevelError, "uploader: upload refused, segment kept")
	t.Logf("%d attempts, %d error logs in %s", attempts, len(errs), 5*slow)
	if len(errs) < 3 || attempts > len(errs)+3 || attempts > 10 {
		t.Errorf("%d attempts and %d error logs in %s; want one per %s step", attempts, len(errs), 5*slow, slow)
	}
	for _, r := range errs {
		if r.attrs["bucket"] != "late" || r.attrs["code"] != "NoSuchBucket" || r.attrs["key"] == "" || r.attrs["err"] == nil {
			t.Errorf("log record %v", r.attrs)
		}
	}
	for _, s := range segs {
		if !exists(t, s.Path()) || !exists(t, s.MetaPath()) {
			t.Fatalf("%s deleted while the bucket is missing", s.Path())
		}
	}
	if u.Pending() != 5 {
		t.Errorf("Pending = %d", u.Pending())
	}
	srv.CreateBucket(t, "late")
	waitFor(t, 10*time.Second, "uploads after the bucket was created", func() bool { return u.Pending() == 0 })
	if keys := listKeys(t, srv.Client(t), "late"); len(keys) != 5 {
		t.Errorf("%d objects", len(keys))
	}
}

// TestMinIOFairness: with a backlog of one container, another container's
// segments go up within the first few uploads.
func TestMinIOFairness(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	root := t.TempDir()
	for i := range 60 {
		makeSegment(t, root, testSegment{container: "backlog", seq: uint64(i), records: 200, dest: minioDest(srv, "logs")})
	}
	var quiet []string
	for i := range 2 {
		s, _ := makeSegment(t, root, testSegment{container: "quiet", seq: uint64(100 + i), records: 200, dest: minioDest(srv, "logs")})
		quiet = append(quiet, s.Meta.Key)
	}
	cfg := Config{Root: root, Workers: 2}
	cp := &confirmingPutter{}
	closeIdle := wrapRealClients(&cfg, cp)
	defer closeIdle()
	start := time.Now()
	u := startUploader(t, cfg, nil)
	waitFor(t, 60*time.Second, "uploads", func() bool { return u.Pending() == 0 })
	_, confirmed := cp.snapshot()
	t.Logf("62 segments in %s", time.Since(start))
	for _, k := range quiet {
		if pos := slices.Index(confirmed, k); pos < 0 || pos > 5 {
			t.Errorf("quiet segment %s confirmed at position %d", k, pos)
		}
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadSeeker
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadSeeker.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingPutter wraps a putter and counts what the SDK reads of each body.
type countingPutter struct {
	next objectPutter
	read atomic.Int64
	puts atomic.Int64
}

func (c *countingPutter) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	c.puts.Add(1)
	in.Body = countingBody{ReadSeeker: in.Body.(io.ReadSeeker), n: &c.read}
	return c.next.PutObject(ctx, in, opts...)
}

// TestMinIOReadsPerAttempt: over http (signed payload) an upload reads the
// segment at most twice, and never to compute Content-MD5, which the
// sidecar carries; a segment sealed before that (no ContentMD5) still
// uploads.
func TestMinIOReadsPerAttempt(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	for _, legacy := range []bool{false, true} {
		root := t.TempDir()
		ts := testSegment{container: "5e6f7a8b9c0d", seq: 7, records: 20000, dest: minioDest(srv, "logs")}
		if legacy {
			ts.contentMD5 = "-"
		}
		s, _ := makeSegment(t, root, ts)
		f := s3client.NewFactory(s3client.Options{MaxAttempts: 1})
		cp := &countingPutter{}
		cfg := Config{Root: root}
		cfg.newClient = func(ctx context.Context, d segment.Destination) (objectPutter, error) {
			c, err := f.Client(ctx, targetOf(d))
			cp.next = c
			return cp, err
		}
		u := startUploader(t, cfg, nil)
		waitFor(t, 30*time.Second, "upload", func() bool { return u.Pending() == 0 })
		f.CloseIdle()
		size := s.Meta.CompressedBytes
		if n := cp.read.Load(); cp.puts.Load() != 1 || n < size || n > 2*size {
			t.Errorf("legacy=%v: %d attempts read %d bytes of a %d-byte segment, want 1 attempt reading 1-2x", legacy, cp.puts.Load(), n, size)
		}
	}
}

// TestMinIOStaleSidecarMD5: a segment whose file no longer matches the MD5
// computed while it was written is refused once (BadDigest), logged, then
// uploaded as it is on disk.
func TestMinIOStaleSidecarMD5(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	root := t.TempDir()
	s, _ := makeSegment(t, root, testSegment{container: "6a7b8c9d0e1f", seq: 3, records: 100, dest: minioDest(srv, "logs"), contentMD5: base64Std(make([]byte, 16))})
	logs := &logRecorder{}
	cp := &confirmingPutter{}
	cfg := Config{Root: root, Logger: slog.New(logs), BackoffBase: 10 * time.Millisecond}
	closeIdle := wrapRealClients(&cfg, cp)
	defer closeIdle()
	u := startUploader(t, cfg, nil)
	waitFor(t, 30*time.Second, "upload", func() bool { return u.Pending() == 0 })
	if attempts, confirmed := cp.snapshot(); attempts != 2 || len(confirmed) != 1 {
		t.Errorf("%d attempts, %d confirmed; want 2 and 1", attempts, len(confirmed))
	}
	if n := len(logs.find(slog.LevelError, "uploader: segment file changed on disk after it was sealed (MD5 differs from the one computed while writing); uploading it as it is")); n != 1 {
		t.Errorf("%d error logs about the changed file, want 1", n)
	}
	_ = s
}

// TestUnsignedPayloadOverTLS: over https a PutObject reads the body once
// (UNSIGNED-PAYLOAD); the server is a TLS endpoint that checks the header.
func TestUnsignedPayloadOverTLS(t *testing.T) {
	var sha string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sha = r.Header.Get("X-Amz-Content-Sha256")
		io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"x"`)
	}))
	defer srv.Close()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, HTTPClient: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		Retryer:     aws.NopRetryer{},
	})
	root := t.TempDir()
	s, _ := makeSegment(t, root, testSegment{container: "7b8c9d0e1f2a", seq: 1, records: 5000, dest: segment.Destination{Bucket: "logs"}})
	f, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n atomic.Int64
	in := putInput(s, countingBody{ReadSeeker: f, n: &n}, s.Meta.CompressedBytes, s.Meta.ContentMD5)
	if _, err := client.PutObject(context.Background(), in, unsignedOverTLS); err != nil {
		t.Fatal(err)
	}
	if sha != "UNSIGNED-PAYLOAD" || n.Load() != s.Meta.CompressedBytes {
		t.Errorf("x-amz-content-sha256 %q, %d bytes read of %d", sha, n.Load(), s.Meta.CompressedBytes)
	}
}
