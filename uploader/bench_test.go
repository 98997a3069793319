package uploader

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/miniotest"
	"github.com/s3logs/s3logs/segment"
)

// linkSpool hard-links the files of spool src into a new spool folder, so
// each benchmark iteration uploads (and deletes) its own copy.
func linkSpool(b *testing.B, src string) string {
	b.Helper()
	dst := b.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if filepath.Base(p) == ".lock" {
			return nil
		}
		return os.Link(p, filepath.Join(dst, rel))
	})
	if err != nil {
		b.Fatal(err)
	}
	return dst
}

// drainCopy uploads a fresh copy of the spool src with cfg (Root set
// here), timing only the upload.
func drainCopy(b *testing.B, src string, cfg Config) {
	b.StopTimer()
	cfg.Root = linkSpool(b, src)
	b.StartTimer()
	u, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := u.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	for u.Pending() > 0 {
		time.Sleep(2 * time.Millisecond)
	}
	u.Close(b.Context())
}

// BenchmarkCatchUp measures how fast a backlog drains into MinIO after an
// outage: 48 spooled segments of 4 MiB (192 MiB), with 4 and 16 upload
// workers. MB/s is compressed segment bytes per second.
func BenchmarkCatchUp(b *testing.B) {
	srv := miniotest.Start(b)
	srv.CreateBucket(b, "logs")
	srv.SetEnv(b)
	dest := segment.Destination{Bucket: "logs", Endpoint: srv.Endpoint, ForcePathStyle: true}
	src := b.TempDir()
	var total int64
	for i := 0; i < 48; i++ {
		total += bigSegment(b, src, 4<<20, dest).Meta.CompressedBytes
	}
	for _, workers := range []int{4, 16} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				drainCopy(b, src, Config{Workers: workers})
			}
		})
	}
}

// BenchmarkLargeSegment uploads one 256 MiB segment to MinIO with one
// PutObject and in 16 MiB parts: the measurement behind
// DefaultMultipartThreshold.
func BenchmarkLargeSegment(b *testing.B) {
	srv := miniotest.Start(b)
	srv.CreateBucket(b, "logs")
	srv.SetEnv(b)
	dest := segment.Destination{Bucket: "logs", Endpoint: srv.Endpoint, ForcePathStyle: true}
	src := b.TempDir()
	size := bigSegment(b, src, 256<<20, dest).Meta.CompressedBytes
	for _, mode := range []struct {
		name      string
		threshold int64
	}{{"put", 1 << 40}, {"multipart", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				drainCopy(b, src, Config{MultipartThreshold: mode.threshold})
			}
		})
	}
}
