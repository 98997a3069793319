package readlogs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/driver/logentry"
	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/internal/miniotest"
	"github.com/s3logs/s3logs/keys"
	"github.com/s3logs/s3logs/segment"
)

const cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeFollower is a subscription fed by the test.
type fakeFollower struct{ c chan []byte }

func (f *fakeFollower) Records() <-chan []byte { return f.c }
func (f *fakeFollower) Overflowed() bool       { return false }
func (f *fakeFollower) Close()                 {}

func rec(i int, t0 time.Time) (time.Time, []byte) {
	tm := t0.Add(time.Duration(i) * time.Second)
	r := record.Record{Line: []byte(fmt.Sprintf("line %d", i)), Newline: true, Source: []string{"stdout", "stderr"}[i%2], Time: tm}
	return tm, record.AppendJSON(nil, &r, nil)
}

// decodeFrames reads LogEntry frames back as "source|line" strings.
func decodeFrames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		n := binary.BigEndian.Uint32(b)
		var e logentry.LogEntry
		if err := e.Unmarshal(b[4 : 4+n]); err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Source+"|"+string(e.Line))
		b = b[4+n:]
	}
	return out
}

// TestReadHistoryAndFollow: records 0-9 are in S3 (two objects), 10-14 in
// a sealed spool segment that is also in S3, 15-19 in the growing
// segment; the follower has seen 18-24 (stored while the history was
// read, and after). docker logs -f gets 0-24 once each, in order; with
// Tail 3 and no follow, 17-19.
func TestReadHistoryAndFollow(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	client := srv.Client(t)
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	p, _ := keys.ParsePrefix("")
	info := keys.Info{ContainerID: cid, ContainerName: "/web"}
	enc, _ := zstd.NewWriter(nil)
	put := func(seq uint64, from, to int) {
		var raw []byte
		for i := from; i < to; i++ {
			_, r := rec(i, t0)
			raw = append(raw, r...)
		}
		first, _ := rec(from, t0)
		key := keys.Key(p.Render(info, first), keys.FilePart(first, cid, seq))
		if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("logs"), Key: aws.String(key), Body: bytes.NewReader(enc.EncodeAll(raw, nil))}); err != nil {
			t.Fatal(err)
		}
	}
	put(1, 0, 5)
	put(2, 5, 10)
	put(3, 10, 15) // also in the spool below, as seq 3

	sp, err := segment.Open(segment.Config{Root: filepath.Join(t.TempDir(), "segments"), NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	// The spool's sequence numbers start at 1: burn two so the sealed
	// segment gets seq 3, as in S3.
	var w *segment.Writer
	newWriter := func() {
		w, err = sp.NewWriter(segment.WriterOptions{Container: segment.Container{ID: cid, Name: "/web"}, Destination: segment.Destination{Bucket: "logs"}, MaxSize: 1 << 20, MaxAge: time.Hour,
			Key: func(first time.Time, seq uint64) string {
				return keys.Key(p.Render(info, first), keys.FilePart(first, cid, seq))
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		newWriter()
		tm, r := rec(0, t0.Add(-time.Hour))
		w.Append(tm, r)
		w.Close(segment.ReasonStop)
	}
	locals, _ := sp.Locals(cid)
	for _, l := range locals {
		segment.Sealed{Dir: filepath.Dir(l.Path), Name: filepath.Base(l.Path), Meta: l.Meta}.Remove()
	}
	newWriter()
	for i := 10; i < 15; i++ {
		w.Append(rec(i, t0))
	}
	w.Close(segment.ReasonSize)
	newWriter()
	for i := 15; i < 20; i++ {
		w.Append(rec(i, t0))
	}
	w.Flush()
	defer w.Close(segment.ReasonStop)

	fol := &fakeFollower{c: make(chan []byte, 100)}
	for i := 18; i < 25; i++ {
		_, r := rec(i, t0)
		fol.c <- r
	}
	close(fol.c)
	s := New(Config{Spool: sp, Follow: func(string) (Follower, bool) { return fol, true }})

	var want []string
	for i := 0; i < 25; i++ {
		want = append(want, []string{"stdout", "stderr"}[i%2]+"|"+fmt.Sprintf("line %d\n", i))
	}
	body := fmt.Sprintf(`{"Info":{"Config":{"bucket":"logs","endpoint":%q},"ContainerID":%q,"ContainerName":"/web"},"Config":{"Since":"0001-01-01T00:00:00Z","Until":"0001-01-01T00:00:00Z","Tail":-1,"Follow":true}}`, srv.Endpoint, cid)
	rw := httptest.NewRecorder()
	s.ServeHTTP(rw, httptest.NewRequest("POST", "/LogDriver.ReadLogs", strings.NewReader(body)))
	if got := decodeFrames(t, rw.Body.Bytes()); strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("follow:\n got %q\nwant %q", got, want)
	}

	body = strings.Replace(strings.Replace(body, `"Tail":-1`, `"Tail":3`, 1), `"Follow":true`, `"Follow":false`, 1)
	rw = httptest.NewRecorder()
	s.ServeHTTP(rw, httptest.NewRequest("POST", "/LogDriver.ReadLogs", strings.NewReader(body)))
	if got := decodeFrames(t, rw.Body.Bytes()); strings.Join(got, "") != strings.Join(want[17:20], "") {
		t.Fatalf("tail 3: %q", got)
	}

	// A bad log-opt is an error before the stream starts.
	rw = httptest.NewRecorder()
	s.ServeHTTP(rw, httptest.NewRequest("POST", "/LogDriver.ReadLogs", strings.NewReader(`{"Info":{"Config":{"bucket":"x","nope":"1"},"ContainerID":"`+cid+`"}}`)))
	if rw.Code != 500 || !strings.Contains(rw.Body.String(), `"Err":"s3logs: `) || !strings.Contains(rw.Body.String(), "nope") {
		t.Fatalf("bad option: %d %s", rw.Code, rw.Body.String())
	}
}
