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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3logs/s3logs/internal/miniotest"
	"github.com/s3logs/s3logs/segment"
)

// The tests in this file run against a real MinIO server (built on demand
// by miniotest). They never skip: CI runs them.

// minioEnv points the SDK's default credential chain at srv: environment
// credentials only, no shared files, no IMDS, no region.
func minioEnv(t *testing.T, srv *miniotest.Server) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

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
	f := &s3Factory{}
	cfg.newClient = func(ctx context.Context, d segment.Destination) (objectPutter, error) {
		c, err := f.newClient(ctx, d)
		if err != nil {
			return nil, err
		}
		cp.mu.Lock()
		cp.next = c
		cp.mu.Unlock()
		return cp, nil
	}
	return f.closeIdle
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
	minioEnv(t, srv)
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
	minioEnv(t, srv)
	seg, _ := makeSegment(t, t.TempDir(), testSegment{container: "digest", seq: 1, records: 100, dest: minioDest(srv, "logs")})
	f := &s3Factory{}
	defer f.closeIdle()
	client, err := f.newClient(context.Background(), seg.Meta.Destination)
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
	minioEnv(t, srv)
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
	minioEnv(t, srv)
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
	minioEnv(t, srv)
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
