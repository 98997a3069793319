package miniotest

import (
	"bytes"
	"context"
	"io"
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
	s.Restart(t)
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
	s.Stop(t)
	if _, err := s.Client(t).ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Fatal("ListBuckets succeeded on a stopped server")
	}
}
