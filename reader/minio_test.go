package reader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/internal/miniotest"
	"github.com/s3logs/s3logs/keys"
)

// world is a bucket in a real MinIO holding segments written the way the
// plugin writes them.
type world struct {
	srv    *miniotest.Server
	client *s3.Client
	bucket string
	mu     sync.Mutex
	listed []string
}

func newWorld(t *testing.T) *world { return newWorldB(t) }

func newWorldB(t testing.TB) *world {
	t.Helper()
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "logs")
	return &world{srv: srv, client: srv.Client(t), bucket: "logs"}
}

// seg is one segment to upload: records at the given times, alternating
// stdout and stderr when mixed.
type seg struct {
	name, id string
	seq      uint64
	times    []time.Time
	mixed    bool
}

// line is the text of record i of a segment.
func (s seg) line(i int) string { return fmt.Sprintf("%s seq %d line %d \"q\" é\n", s.name, s.seq, i) }

func (s seg) source(i int) string {
	if s.mixed && i%2 == 1 {
		return "stderr"
	}
	return "stdout"
}

// put uploads s under the template tmpl (hostname "h1").
func (w *world) put(t *testing.T, tmpl string, s seg) string {
	t.Helper()
	p, err := keys.ParsePrefix(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for i, tm := range s.times {
		r := record.Record{Line: []byte(strings.TrimSuffix(s.line(i), "\n")), Newline: true, Source: s.source(i), Time: tm}
		raw = record.AppendJSON(raw, &r, nil)
	}
	enc, _ := zstd.NewWriter(nil)
	body := enc.EncodeAll(raw, nil)
	info := keys.Info{ContainerID: s.id, ContainerName: "/" + s.name, Hostname: "h1", DaemonName: "docker"}
	key := keys.Key(p.Render(info, s.times[0]), keys.FilePart(s.times[0], s.id, s.seq))
	_, err = w.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(w.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		Metadata: map[string]string{"container-name": s.name, "container-id": s.id, "last-time": s.times[len(s.times)-1].Format(time.RFC3339Nano)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (w *world) reader(t *testing.T, tmpl string, now time.Time) *Reader {
	t.Helper()
	p, err := keys.ParsePrefix(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Store: w.client, Bucket: w.bucket, Prefix: p, Now: func() time.Time { return now },
		OnList: func(prefix string) { w.mu.Lock(); w.listed = append(w.listed, prefix); w.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (w *world) takeListed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.listed
	w.listed = nil
	return l
}

// every returns n times from start, step apart.
func every(start time.Time, step time.Duration, n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = start.Add(time.Duration(i) * step)
	}
	return out
}

const (
	idWeb = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
	idDB  = "dddd9999eeee0000ffff1111aaaa2222bbbb3333cccc4444dddd5555eeee6666"
)

// collect reads q and returns "name|source|log" lines.
func collect(t *testing.T, r *Reader, q Query) ([]string, error) {
	t.Helper()
	var out []string
	err := r.Logs(context.Background(), q, func(rec *Record) error {
		out = append(out, rec.Container.Label()+"|"+rec.Source+"|"+string(rec.Log))
		return nil
	})
	return out, err
}

// TestFindAndStream covers the default template: day folders named from
// the window, pruning by the next segment's start, merging two containers
// by time, tail, and selectors by name and id prefix.
func TestFindAndStream(t *testing.T) {
	w := newWorld(t)
	const tmpl = ""
	day := time.Date(2026, 11, 20, 23, 50, 0, 0, time.UTC)
	// web: one segment per day for 5 days, each 10 records a minute apart.
	var webSegs []seg
	for d := 0; d < 5; d++ {
		s := seg{name: "web", id: idWeb, seq: uint64(10 + d), times: every(day.AddDate(0, 0, d), time.Minute, 10), mixed: true}
		webSegs = append(webSegs, s)
		w.put(t, tmpl, s)
	}
	// db: on the last day, records interleaved with web's, 30 s later.
	db := seg{name: "db", id: idDB, seq: 3, times: every(day.AddDate(0, 0, 4).Add(30*time.Second), time.Minute, 10)}
	w.put(t, tmpl, db)
	now := day.AddDate(0, 0, 4).Add(time.Hour)
	r := w.reader(t, tmpl, now)

	// Everything of web, in order.
	got, err := collect(t, r, Query{Selectors: []string{"web"}, Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 || got[0] != "web|stdout|"+webSegs[0].line(0) || got[49] != "web|stderr|"+webSegs[4].line(9) {
		t.Fatalf("web: %d records, first %q last %q", len(got), got[0], got[len(got)-1])
	}
	w.takeListed()

	// A window inside the last day lists that day (and the look-back's).
	since := day.AddDate(0, 0, 4).Add(2 * time.Minute) // 23:52 on the 24th
	got, err = collect(t, r, Query{Selectors: []string{"web", "db"}, Window: Window{Since: since}, Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	listed := w.takeListed()
	for _, p := range listed {
		if !strings.HasSuffix(p, "2026/11/24/") && !strings.HasSuffix(p, "2026/11/25/") {
			t.Errorf("listed %q outside the window and its look-back", p)
		}
	}
	// The last day's segments start at 23:50 on the 24th: 8 records each
	// from 00:02 on.
	var want []string
	for i := 2; i < 10; i++ {
		want = append(want, "web|"+webSegs[4].source(i)+"|"+webSegs[4].line(i), "db|stdout|"+db.line(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("window merge:\n got %q\nwant %q", got, want)
	}

	// Tail per container reads only the newest segment.
	var st Stats
	got, err = collect(t, r, Query{Selectors: []string{"web"}, Tail: 3, Stats: &st})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2] != "web|stderr|"+webSegs[4].line(9) || st.ObjectsDone.Load() != 1 {
		t.Errorf("tail 3: %q, %d objects read", got, st.ObjectsDone.Load())
	}
	got, _ = collect(t, r, Query{Selectors: []string{"web"}, Tail: 12})
	if len(got) != 12 || got[0] != "web|stdout|"+webSegs[3].line(8) {
		t.Errorf("tail 12 spanning two segments: %q", got)
	}

	// An id prefix selects the container too; until bounds the end.
	got, err = collect(t, r, Query{Selectors: []string{"dddd99"}, Window: Window{Until: db.times[1]}, Tail: -1})
	if err != nil || len(got) != 2 || !strings.HasPrefix(got[0], "db|") {
		t.Errorf("id prefix with until: %q %v", got, err)
	}

	// A name that is not there.
	_, err = collect(t, r, Query{Selectors: []string{"nope"}, Window: Window{Since: since}, Tail: -1})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope/2026/11/24/"`) {
		t.Errorf("missing container: %v", err)
	}

	// Every container, as ls sees them.
	cs, err := r.Find(context.Background(), nil, Window{})
	if err != nil || len(cs) != 2 {
		t.Fatalf("find all: %v %v", cs, err)
	}
}

// TestTemplates checks the walk over templates with unknown fields, Hive
// folders and no name at all.
func TestTemplates(t *testing.T) {
	w := newWorld(t)
	start := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	now := start.Add(3 * time.Hour)
	for _, tmpl := range []string{
		"container={{.Name}}/date={{.Year}}-{{.Month}}-{{.Day}}/",
		"logs/{{.Hostname}}/{{.Name}}/{{.Year}}/{{.Month}}/{{.Day}}/{{.Hour}}/",
		"byid/{{.ID}}/{{.Year}}{{.Month}}{{.Day}}/",
		"flat/{{.Name}}-",
	} {
		t.Run(tmpl, func(t *testing.T) {
			a := seg{name: "api", id: idWeb, seq: 1, times: every(start, time.Minute, 5)}
			b := seg{name: "api", id: idWeb, seq: 2, times: every(start.Add(2*time.Hour), time.Minute, 5)}
			other := seg{name: "apix", id: idDB, seq: 3, times: every(start, time.Minute, 5)}
			for _, s := range []seg{a, b, other} {
				w.put(t, tmpl, s)
			}
			r := w.reader(t, tmpl, now)
			got, err := collect(t, r, Query{Selectors: []string{"api"}, Tail: -1})
			if err != nil || len(got) != 10 || got[9] != "api|stdout|"+b.line(4) {
				t.Fatalf("all: %q %v", got, err)
			}
			got, err = collect(t, r, Query{Selectors: []string{"api"}, Window: Window{Since: start.Add(2*time.Hour + 3*time.Minute)}, Tail: -1})
			if err != nil || len(got) != 2 {
				t.Errorf("since: %q %v", got, err)
			}
			got, err = collect(t, r, Query{Selectors: []string{idWeb[:5]}, Tail: 1})
			if err != nil || len(got) != 1 || got[0] != "api|stdout|"+b.line(4) {
				t.Errorf("id prefix: %q %v", got, err)
			}
		})
	}
	p, _ := keys.ParsePrefix(`{{if .Name}}{{.Name}}{{end}}/`)
	if _, err := New(Config{Store: w.client, Bucket: "logs", Prefix: p}); !errors.Is(err, keys.ErrNotWalkable) {
		t.Errorf("unwalkable template: %v", err)
	}
}

// TestFollow checks that a follow sees objects uploaded after it started.
func TestFollow(t *testing.T) {
	w := newWorld(t)
	start := time.Now().UTC().Add(-time.Minute)
	first := seg{name: "f", id: idWeb, seq: 1, times: every(start, time.Second, 3)}
	w.put(t, "", first)
	r := w.reader(t, "", time.Now())
	r.cfg.Now = time.Now
	var caught atomic.Int32
	got, stop := follow(t, r, Query{Selectors: []string{"f"}, Tail: -1, Caught: func() { caught.Add(1) }})
	for i := 0; i < 3; i++ {
		if l := nextLine(t, got, "the first object"); l != first.line(i) {
			t.Fatalf("record %d: %q", i, l)
		}
	}
	second := seg{name: "f", id: idWeb, seq: 2, times: every(start.Add(10*time.Second), time.Second, 2)}
	w.put(t, "", second)
	for i := 0; i < 2; i++ {
		if l := nextLine(t, got, "the new object"); l != second.line(i) {
			t.Fatalf("followed record %d: %q", i, l)
		}
	}
	waitCaught := time.Now().Add(5 * time.Second)
	for caught.Load() < 2 && time.Now().Before(waitCaught) {
		time.Sleep(10 * time.Millisecond)
	}
	if caught.Load() < 2 {
		t.Errorf("Caught called %d times, want once after the start and once after the new object", caught.Load())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestFollowLateSegment: a segment that appears in S3 after a newer one
// of the same container (the uploader sent a stopped container's last
// segment ahead of its backlog) is still followed, once, and a segment
// listed before is not printed again.
func TestFollowLateSegment(t *testing.T) {
	w := newWorld(t)
	start := time.Now().UTC().Add(-time.Minute)
	first := seg{name: "f", id: idWeb, seq: 1, times: every(start, time.Second, 2)}
	w.put(t, "", first)
	r := w.reader(t, "", time.Now())
	r.cfg.Now = time.Now
	got, stop := follow(t, r, Query{Selectors: []string{"f"}, Tail: -1})
	for i := range 2 {
		if l := nextLine(t, got, "the first segment"); l != first.line(i) {
			t.Fatalf("record %d: %q", i, l)
		}
	}
	third := seg{name: "f", id: idWeb, seq: 3, times: every(start.Add(20*time.Second), time.Second, 2)}
	w.put(t, "", third)
	for i := range 2 {
		if l := nextLine(t, got, "the newer segment"); l != third.line(i) {
			t.Fatalf("newer segment record %d: %q", i, l)
		}
	}
	late := seg{name: "f", id: idWeb, seq: 2, times: every(start.Add(10*time.Second), time.Second, 2)}
	w.put(t, "", late)
	for i := range 2 {
		if l := nextLine(t, got, "the segment that appeared late"); l != late.line(i) {
			t.Fatalf("late segment record %d: %q", i, l)
		}
	}
	select {
	case l := <-got:
		t.Fatalf("printed again: %q", l)
	case <-time.After(500 * time.Millisecond): // five polls
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestS3Errors checks that a missing bucket is reported as such.
func TestS3Errors(t *testing.T) {
	w := newWorld(t)
	r, err := New(Config{Store: w.client, Bucket: "no-such-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Find(context.Background(), []string{"x"}, Window{})
	if !errors.Is(err, ErrNoBucket) {
		t.Errorf("missing bucket: %v", err)
	}
	bad := s3.New(s3.Options{Region: w.srv.Region, BaseEndpoint: aws.String(w.srv.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("nobody", "wrong-secret", "")})
	r, err = New(Config{Store: bad, Bucket: "logs"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = r.Find(context.Background(), []string{"x"}, Window{}); !errors.Is(err, ErrAccess) {
		t.Errorf("bad credentials: %v", err)
	}
}

// TestFollowFromNothing: a follow that starts before the container's first
// object reaches S3 prints every segment that appears, including those
// whose records are older than the follow.
func TestFollowFromNothing(t *testing.T) {
	w := newWorld(t)
	r := w.reader(t, "", time.Now())
	r.cfg.Now = time.Now
	waiting := make(chan error, 10)
	got, stop := follow(t, r, Query{Selectors: []string{"late"}, Tail: -1, Waiting: func(err error) { waiting <- err }})
	if err := <-waiting; !errors.Is(err, ErrNotFound) {
		t.Fatalf("waiting with %v", err)
	}
	old := time.Now().UTC().Add(-30 * time.Second)
	a := seg{name: "late", id: idWeb, seq: 1, times: every(old, time.Second, 3)}
	b := seg{name: "late", id: idWeb, seq: 2, times: every(old.Add(5*time.Second), time.Second, 3)}
	w.put(t, "", a)
	w.put(t, "", b)
	for _, s := range []seg{a, b} {
		for i := 0; i < 3; i++ {
			if l := nextLine(t, got, strconv.Quote(s.line(i))); l != s.line(i) {
				t.Fatalf("got %q, want %q", l, s.line(i))
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// follow runs r.Logs with q, following every 100 ms, on a goroutine of its
// own; lines receives each record's log. stop cancels it and returns what
// Logs returned; the test's cleanup calls it too, so the goroutine never
// outlives the test.
func follow(t *testing.T, r *Reader, q Query) (lines <-chan string, stop func() error) {
	t.Helper()
	q.Follow, q.Poll = true, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.Logs(ctx, q, func(rec *Record) error {
			got <- string(rec.Log)
			return nil
		})
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return got, stop
}

// nextLine returns the next line a follow printed, failing the test if
// none comes within 10 s; what names the line awaited.
func nextLine(t *testing.T, lines <-chan string, what string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("follow did not print %s", what)
		return ""
	}
}
