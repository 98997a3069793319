package uploader

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3logs/s3logs/internal/miniotest"
	"github.com/s3logs/s3logs/s3client"
	"github.com/s3logs/s3logs/segment"
)

// bigSegment writes a sealed segment of about size compressed bytes of
// poorly compressible records with the real segment writer under root.
func bigSegment(t testing.TB, root string, size int, dest segment.Destination) segment.Sealed {
	t.Helper()
	sp, err := segment.Open(segment.Config{Root: root, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var sealed []segment.Sealed
	w, err := sp.NewWriter(segment.WriterOptions{
		Container: segment.Container{ID: "9f8e7d6c5b4a39281706", Name: "/big"}, Destination: dest, MaxSize: 1 << 40, MaxAge: time.Hour,
		Key:    func(first time.Time, seq uint64) string { return "big/" + first.Format("150405.000") + ".jsonl.zst" },
		OnSeal: func(s segment.Sealed) { sealed = append(sealed, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	line := make([]byte, 8192)
	for written := 0; written < size; written += len(line) {
		for i := range line[:len(line)-1] {
			line[i] = 'a' + byte(rng.IntN(26))
		}
		line[len(line)-1] = '\n'
		if err := w.Append(time.Now(), line); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(segment.ReasonSize)
	return sealed[0]
}

// mpClient is a real S3 client whose multipart calls can be made to fail.
type mpClient struct {
	*s3.Client
	mu        sync.Mutex
	parts     []int32 // part numbers sent, in order
	failPart  func(n int32, call int) error
	lostReply int // CompleteMultipartUpload replies to drop after success
	completes int
	partDelay time.Duration
}

func (c *mpClient) UploadPart(ctx context.Context, in *s3.UploadPartInput, opts ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	c.mu.Lock()
	c.parts = append(c.parts, *in.PartNumber)
	call := len(c.parts)
	fail := c.failPart
	c.mu.Unlock()
	time.Sleep(c.partDelay)
	if fail != nil {
		if err := fail(*in.PartNumber, call); err != nil {
			return nil, err
		}
	}
	return c.Client.UploadPart(ctx, in, opts...)
}

func (c *mpClient) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	out, err := c.Client.CompleteMultipartUpload(ctx, in, opts...)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.completes++
	if err == nil && c.lostReply > 0 {
		c.lostReply--
		return nil, &smithy.GenericAPIError{Code: "InternalError", Message: "reply lost (test)"}
	}
	return out, err
}

func (c *mpClient) sent() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int32(nil), c.parts...)
}

// mpSetup starts MinIO, writes a 40 MiB segment (3 parts) and returns an
// uploader config whose client is c.
func mpSetup(t *testing.T) (*miniotest.Server, segment.Sealed, Config, *mpClient) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	root := t.TempDir()
	bigSegment(t, root, 40<<20, minioDest(srv, "logs"))
	return mpSetupFor(t, srv, root)
}

// checkObject requires the object to equal the segment file, as one
// 3-part multipart object, and no unfinished upload to be left.
func checkObject(t *testing.T, client *s3.Client, seg segment.Sealed, want []byte) {
	t.Helper()
	ctx := context.Background()
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs"), Key: aws.String(seg.Meta.Key)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("object: %d bytes, file %d bytes, equal %v (%v)", len(got), len(want), bytes.Equal(got, want), err)
	}
	if etag := strings.Trim(aws.ToString(obj.ETag), `"`); etag != multipartETag(seg.Meta.PartMD5s) {
		t.Errorf("ETag %s, want %s", etag, multipartETag(seg.Meta.PartMD5s))
	}
	if obj.Metadata["container-id"] == "" {
		t.Errorf("metadata missing: %v", obj.Metadata)
	}
	ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("logs")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Errorf("%d unfinished uploads left (%v)", len(ups.Uploads), err)
	}
}

// TestMinIOMultipart: a segment over the threshold goes up in parts under
// its key; a part that fails once is retried alone; a Complete whose reply
// was lost is not repeated into anything new.
func TestMinIOMultipart(t *testing.T) {
	srv, seg, cfg, c := mpSetup(t)
	want, err := os.ReadFile(seg.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(seg.Meta.PartMD5s) != 3 {
		t.Fatalf("%d parts", len(seg.Meta.PartMD5s))
	}
	c.failPart = func(n int32, call int) error {
		if n == 2 && call == 2 {
			return &smithy.GenericAPIError{Code: "SlowDown", Message: "test"}
		}
		return nil
	}
	c.lostReply = 1
	u := startUploader(t, cfg, nil)
	waitFor(t, 60*time.Second, "upload", func() bool { return u.Pending() == 0 })
	if got := c.sent(); len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 2 || got[3] != 3 {
		t.Errorf("parts sent %v, want [1 2 2 3]", got)
	}
	if c.completes != 2 {
		t.Errorf("%d CompleteMultipartUpload calls, want 2", c.completes)
	}
	checkObject(t, srv.Client(t), seg, want)
	if exists(t, seg.Path()) {
		t.Error("segment still on disk")
	}
}

// TestMinIOMultipartAbortsOnPermanentError: a permanent error aborts the
// upload (no parts left to bill); the segment stays for a later attempt.
func TestMinIOMultipartAbortsOnPermanentError(t *testing.T) {
	srv, seg, cfg, c := mpSetup(t)
	var denied atomic.Bool
	denied.Store(true)
	c.failPart = func(n int32, call int) error {
		if n == 2 && denied.Load() {
			return &smithy.GenericAPIError{Code: "AccessDenied", Message: "test"}
		}
		return nil
	}
	cfg.BackoffCap = 300 * time.Millisecond
	u := startUploader(t, cfg, nil)
	client := srv.Client(t)
	waitFor(t, 30*time.Second, "the abort", func() bool {
		if len(c.sent()) < 2 {
			return false
		}
		ups, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("logs")})
		return err == nil && len(ups.Uploads) == 0
	})
	if !exists(t, seg.Path()) {
		t.Fatal("segment removed after a refused upload")
	}
	want, _ := os.ReadFile(seg.Path())
	denied.Store(false)
	waitFor(t, 30*time.Second, "upload", func() bool { return u.Pending() == 0 })
	checkObject(t, client, seg, want)
}

// TestMinIOMultipartKill: an uploader process killed with SIGKILL in the
// middle of a multipart upload; the next process resumes the upload,
// sending only the parts missing, and the object is the file, byte for
// byte.
func TestMinIOMultipartKill(t *testing.T) {
	if os.Getenv("S3LOGS_TEST_MP_CHILD") != "" {
		t.Skip("runs as the child of this test")
	}
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	root := t.TempDir()
	seg := bigSegment(t, root, 40<<20, minioDest(srv, "logs"))
	want, err := os.ReadFile(seg.Path())
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self, "-test.run", "^TestMultipartChild$")
	child.Env = append(os.Environ(), "S3LOGS_TEST_MP_CHILD="+root)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	client := srv.Client(t)
	// Kill it once the first part is in.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ups, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("logs")})
		if err == nil && len(ups.Uploads) == 1 {
			parts, err := client.ListParts(context.Background(), &s3.ListPartsInput{Bucket: aws.String("logs"), Key: ups.Uploads[0].Key, UploadId: ups.Uploads[0].UploadId})
			if err == nil && len(parts.Parts) >= 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			child.Process.Kill()
			child.Wait()
			t.Fatalf("no part uploaded by the child:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	child.Process.Kill() // SIGKILL
	child.Wait()
	if !exists(t, seg.Path()) {
		t.Fatal("segment gone after the kill")
	}

	_, _, cfg, c := mpSetupFor(t, srv, root)
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	u := startUploader(t, cfg, nil)
	waitFor(t, 60*time.Second, "upload after restart", func() bool { return u.Pending() == 0 })
	if sent := c.sent(); len(sent) == 0 || len(sent) >= 3 || sent[0] == 1 {
		t.Errorf("after the restart parts %v were sent; want only the missing ones", sent)
	}
	if len(logs.find(slog.LevelInfo, "uploader: resuming a multipart upload")) != 1 {
		t.Error("no resume logged")
	}
	checkObject(t, client, seg, want)
}

// TestMultipartChild is the uploader process TestMinIOMultipartKill kills:
// it uploads the spool at S3LOGS_TEST_MP_CHILD, one part every 2 s.
func TestMultipartChild(t *testing.T) {
	root := os.Getenv("S3LOGS_TEST_MP_CHILD")
	if root == "" {
		t.Skip("only as the child of TestMinIOMultipartKill")
	}
	_, _, cfg, c := mpSetupFor(t, nil, root)
	c.partDelay = 2 * time.Second
	startUploader(t, cfg, nil)
	time.Sleep(time.Minute) // killed long before
}

// mpSetupFor is mpSetup over an existing spool (srv nil: from the
// environment the parent set).
func mpSetupFor(t *testing.T, srv *miniotest.Server, root string) (*miniotest.Server, segment.Sealed, Config, *mpClient) {
	segs, err := segment.ScanSealed(root)
	if err != nil || len(segs) != 1 {
		t.Fatalf("spool: %v %v", segs, err)
	}
	f := s3client.NewFactory(s3client.Options{MaxAttempts: 1})
	t.Cleanup(f.CloseIdle)
	raw, err := f.Client(context.Background(), targetOf(segs[0].Meta.Destination))
	if err != nil {
		t.Fatal(err)
	}
	c := &mpClient{Client: raw}
	cfg := Config{Root: root, MultipartThreshold: 1 << 20, BackoffBase: 10 * time.Millisecond, BackoffCap: 50 * time.Millisecond}
	cfg.newClient = func(context.Context, segment.Destination) (objectPutter, error) { return c, nil }
	return srv, segs[0], cfg, c
}
