package reader

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/keys"
)

// benchSegment uploads one segment of n ~120-byte access-log records
// starting at first, one record per step, and returns its raw log bytes.
func benchSegment(b *testing.B, client *s3.Client, enc *zstd.Encoder, name, id string, seq uint64, first time.Time, step time.Duration, n int) int64 {
	p, _ := keys.ParsePrefix("")
	var raw []byte
	var logBytes int64
	for i := 0; i < n; i++ {
		line := fmt.Sprintf("%s INFO request id=%d path=/api/v1/items/%d status=%d dur=%dms user=%08x", first.Add(time.Duration(i)*step).Format(time.RFC3339Nano), int(seq)*n+i, i%9973, 200+i%7, i%250, uint32(i*2654435761))
		r := record.Record{Line: []byte(line), Newline: true, Source: []string{"stdout", "stderr"}[i%5/4], Time: first.Add(time.Duration(i) * step)}
		raw = record.AppendJSON(raw, &r, nil)
		logBytes += int64(len(line) + 1)
	}
	body := enc.EncodeAll(raw, nil)
	info := keys.Info{ContainerID: id, ContainerName: "/" + name, DaemonName: "docker"}
	key := keys.Key(p.Render(info, first), keys.FilePart(first, id, seq))
	if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("logs"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		b.Fatal(err)
	}
	return logBytes
}

// BenchmarkLogsThroughput reads a container's 1 GB of records from MinIO
// (16 segments of 64 MiB of JSON records, zstd default level), printing
// nothing: MB/s is records' log bytes per second. It runs with 2 cores
// whatever -cpu says, as the goal is stated for 2 cores.
func BenchmarkLogsThroughput(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	w := newWorldB(b)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	start := time.Now().Add(-48 * time.Hour).UTC()
	var total int64
	const perSeg = 64 << 20 / 200 // records of about 200 bytes stored
	for i := 0; total < 1e9; i++ {
		total += benchSegment(b, w.client, enc, "big", idWeb, uint64(i), start.Add(time.Duration(i)*time.Hour), time.Hour/perSeg, perSeg)
	}
	r, err := New(Config{Store: w.client, Bucket: "logs"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		var n atomic.Int64
		err := r.Logs(context.Background(), Query{Selectors: []string{"big"}, Tail: -1}, func(rec *Record) error {
			n.Add(int64(len(rec.Log)))
			return nil
		})
		if err != nil || n.Load() != total {
			b.Fatalf("%d of %d bytes: %v", n.Load(), total, err)
		}
	}
}

// BenchmarkTail100 answers --tail 100 for a container with 1,000 segments
// of 1,000 records; objects/op counts the objects fetched (goal: at most 2).
func BenchmarkTail100(b *testing.B) {
	w := newWorldB(b)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	start := time.Now().Add(-1000 * time.Minute).UTC()
	for i := 0; i < 1000; i++ {
		benchSegment(b, w.client, enc, "many", idWeb, uint64(i), start.Add(time.Duration(i)*time.Minute), 50*time.Millisecond, 1000)
	}
	r, err := New(Config{Store: w.client, Bucket: "logs"})
	if err != nil {
		b.Fatal(err)
	}
	var objects int64
	for b.Loop() {
		var st Stats
		n := 0
		err := r.Logs(context.Background(), Query{Selectors: []string{"many"}, Tail: 100, Stats: &st}, func(*Record) error { n++; return nil })
		if err != nil || n != 100 {
			b.Fatalf("%d records: %v", n, err)
		}
		objects += st.ObjectsDone.Load()
	}
	b.ReportMetric(float64(objects)/float64(b.N), "objects/op")
}

// BenchmarkSince10m answers --since 10m for a container with 30 days of
// segments (one an hour); prefixes/op counts the prefixes listed, which
// must be only the window's day folders (and the look-back's).
func BenchmarkSince10m(b *testing.B) {
	w := newWorldB(b)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	now := time.Now().UTC()
	start := now.Add(-30 * 24 * time.Hour)
	for i := 0; i < 30*24; i++ {
		benchSegment(b, w.client, enc, "month", idWeb, uint64(i), start.Add(time.Duration(i)*time.Hour), time.Second, 10)
	}
	// The last segment covers the window.
	benchSegment(b, w.client, enc, "month", idWeb, 100000, now.Add(-20*time.Minute), time.Minute, 20)
	var listed atomic.Int64
	var bad atomic.Value
	r, err := New(Config{Store: w.client, Bucket: "logs", OnList: func(p string) {
		listed.Add(1)
		lo, hi := now.Add(-10*time.Minute-DefaultLookback), now.Add(time.Minute)
		if !strings.HasPrefix(p, "month/"+lo.Format("2006/01/02")) && !strings.HasPrefix(p, "month/"+hi.Format("2006/01/02")) {
			bad.Store(p)
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n := 0
		err := r.Logs(context.Background(), Query{Selectors: []string{"month"}, Window: Window{Since: time.Now().Add(-10 * time.Minute)}, Tail: -1}, func(*Record) error { n++; return nil })
		if err != nil || n == 0 {
			b.Fatalf("%d records: %v", n, err)
		}
	}
	if p := bad.Load(); p != nil {
		b.Fatalf("listed %q outside the window", p)
	}
	b.ReportMetric(float64(listed.Load())/float64(b.N), "prefixes/op")
}
