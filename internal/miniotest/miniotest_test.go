package miniotest

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServerLifecycle starts a server, stores an object, restarts the
// server and reads the object back.
func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	s.CreateBucket(t, "lifecycle")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := []byte("hello minio")
	if _, err := s.Client(t).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("lifecycle"), Key: aws.String("a/b"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %s", time.Since(start))
	out, err := s.Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("lifecycle"), Key: aws.String("a/b")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("got %q, %v; want %q", got, err, body)
	}
	s.Stop()
	if _, err := s.Client(t).ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Fatal("ListBuckets succeeded on a stopped server")
	}
}

// TestModule: minio.module holds exactly one line, a module@version that
// `go install` accepts (the Makefile installs the same line).
func TestModule(t *testing.T) {
	b, err := os.ReadFile("minio.module")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^github\.com/minio/minio@v[0-9][^\s@]*\n$`).Match(b) {
		t.Fatalf("minio.module = %q, want one line module@version", b)
	}
	if got := Module(); got+"\n" != string(b) {
		t.Fatalf("Module() = %q, want the file's line", got)
	}
}

// TestCloseRemovesData: Close kills the server and removes its folder; a
// second Close is a no-op.
func TestCloseRemovesData(t *testing.T) {
	s, err := Launch(Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.DataDir); !os.IsNotExist(err) {
		t.Fatalf("data folder after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
