package uploader

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// attempts is an Observer that keeps what it is told.
type attempts struct {
	mu  sync.Mutex
	got []Attempt
}

func (a *attempts) ObserveUpload(at Attempt) {
	a.mu.Lock()
	a.got = append(a.got, at)
	a.mu.Unlock()
}

func (a *attempts) list() []Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Attempt(nil), a.got...)
}

// TestObserverAndStats: every attempt is reported with its result, code,
// size and whether it is a retry, and Stats shows the failing destination
// from its first failure until an upload succeeds.
func TestObserverAndStats(t *testing.T) {
	root := t.TempDir()
	seg, _ := makeSegment(t, root, testSegment{container: "a", seq: 1, records: 10, dest: destA})
	fi, err := os.Stat(seg.Path())
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{now: baseTime}
	var fails atomic.Int32
	p := &fakePutter{put: func(ctx context.Context, in *s3.PutObjectInput) error {
		switch fails.Add(1) {
		case 1:
			return s3Error(503, "SlowDown")
		case 2:
			return s3Error(404, "NoSuchBucket")
		}
		return nil
	}}
	obs := &attempts{}
	u := startUploader(t, Config{Root: root, Workers: 1, BackoffBase: time.Second, BackoffCap: time.Minute,
		clock: clk, randN: func(m int64) int64 { return m - 1 }, Observer: obs}, p)
	waitFor(t, 5*time.Second, "first attempt", func() bool { return len(obs.list()) == 1 })
	st := u.Stats()
	if st.Pending != 1 || len(st.Failing) != 1 {
		t.Fatalf("after a failure: %+v", st)
	}
	if f := st.Failing[0]; f.Bucket != destA.Bucket || f.Region != destA.Region || f.Failures != 1 || !f.Since.Equal(baseTime) {
		t.Errorf("failing destination %+v, want %s since %v", f, destA.Bucket, baseTime)
	}
	clk.Advance(time.Minute)
	waitFor(t, 5*time.Second, "second attempt", func() bool { return len(obs.list()) == 2 })
	if f := u.Stats().Failing; len(f) != 1 || f[0].Failures != 2 || !f[0].Since.Equal(baseTime) {
		t.Errorf("after two failures: %+v, want 2 failures since %v", f, baseTime)
	}
	clk.Advance(time.Minute)
	waitFor(t, 5*time.Second, "upload", func() bool { return u.Pending() == 0 })
	if st := u.Stats(); len(st.Failing) != 0 {
		t.Errorf("after the upload: %+v", st)
	}
	want := []Attempt{
		{Bucket: destA.Bucket, Result: ResultRetryable, Code: "SlowDown", Bytes: fi.Size()},
		{Bucket: destA.Bucket, Result: ResultPermanent, Code: "NoSuchBucket", Bytes: fi.Size(), Retry: true},
		{Bucket: destA.Bucket, Result: ResultSuccess, Code: "", Bytes: fi.Size(), Retry: true},
	}
	got := obs.list()
	if len(got) != len(want) {
		t.Fatalf("attempts %+v, want %+v", got, want)
	}
	for i := range want {
		got[i].Duration = 0 // the fake clock does not move during an attempt
		if got[i] != want[i] {
			t.Errorf("attempt %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
