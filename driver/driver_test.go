package driver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/s3logs/s3logs/driver/logentry"
	"github.com/s3logs/s3logs/driver/logopt"
	"github.com/s3logs/s3logs/segment"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// queue is a fake uploader that records what it is given.
type queue struct {
	mu     sync.Mutex
	sealed []segment.Sealed
	urgent []bool
	got    chan struct{}
}

func (q *queue) Enqueue(s segment.Sealed, urgent bool) {
	q.mu.Lock()
	q.sealed = append(q.sealed, s)
	q.urgent = append(q.urgent, urgent)
	q.mu.Unlock()
	select {
	case q.got <- struct{}{}:
	default:
	}
}

func (q *queue) wait(t *testing.T, n int) []segment.Sealed {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		q.mu.Lock()
		if len(q.sealed) >= n {
			defer q.mu.Unlock()
			return append([]segment.Sealed(nil), q.sealed...)
		}
		q.mu.Unlock()
		select {
		case <-q.got:
		case <-deadline:
			t.Fatalf("timed out waiting for %d sealed segments", n)
		}
	}
}

type env struct {
	t     testing.TB
	d     *Driver
	q     *queue
	spool *segment.Spool
	fifos string
	state string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, q: &queue{got: make(chan struct{}, 1)}, fifos: filepath.Join(dir, "logging"), state: filepath.Join(dir, "streams")}
	os.MkdirAll(e.fifos, 0o700)
	e.openDriver(filepath.Join(dir, "segments"))
	return e
}

func (e *env) openDriver(root string) {
	sp, err := segment.Open(segment.Config{Root: root, Logger: slog.New(slog.DiscardHandler), RecordTime: RecordTime})
	if err != nil {
		e.t.Fatal(err)
	}
	e.spool = sp
	d, err := New(Config{Spool: sp, Uploader: e.q, StateDir: e.state, FIFODir: e.fifos, Hostname: "host1", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.d = d
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
		sp.Close()
	})
}

// fifo makes a FIFO and opens it read-write, as dockerd does.
func (e *env) fifo(name string) (string, *os.File) {
	e.t.Helper()
	path := filepath.Join(e.fifos, name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		e.t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return path, f
}

func info(cfg map[string]string) Info {
	return Info{
		Config:             cfg,
		ContainerID:        strings.Repeat("ab", 32),
		ContainerName:      "/web",
		ContainerImageName: "img:1",
		ContainerEnv:       []string{"SECRET=hunter2", "APP=demo"},
		ContainerLabels:    map[string]string{"team": "core"},
		DaemonName:         "docker",
	}
}

func frame(t testing.TB, e *logentry.LogEntry) []byte {
	t.Helper()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	return append(out, b...)
}

func readSegment(t *testing.T, s segment.Sealed) []map[string]any {
	t.Helper()
	f, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, _ := zstd.NewReader(f)
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestStreamToSealedSegment(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("c1")
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs", "env": "APP", "labels": "team", "mode": "blocking"})); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 27, 15, 44, 5, 123456789, time.UTC)
	var buf []byte
	buf = append(buf, frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: ts.UnixNano(), Line: []byte("hello")})...)
	buf = append(buf, frame(t, &logentry.LogEntry{Source: "stderr", TimeNano: ts.UnixNano(), Line: []byte(`a "quoted" \ line`)})...)
	buf = append(buf, frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: ts.UnixNano(), Line: []byte("no newline"), Partial: true,
		PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "p1", Ordinal: 1, Last: true}})...)
	if _, err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
	e.d.StopLogging(path) // returns at once, the writer end is still open
	w.Close()
	seals := e.q.wait(t, 1)
	if !e.q.urgent[0] || seals[0].Meta.Reason != segment.ReasonStop {
		t.Fatalf("stopped stream's segment: urgent=%v reason=%s", e.q.urgent[0], seals[0].Meta.Reason)
	}
	recs := readSegment(t, seals[0])
	if len(recs) != 3 {
		t.Fatalf("%d records: %v", len(recs), recs)
	}
	if recs[0]["log"] != "hello\n" || recs[0]["stream"] != "stdout" || recs[0]["time"] != "2026-11-27T15:44:05.123456789Z" {
		t.Errorf("record 0 = %v", recs[0])
	}
	if recs[1]["log"] != "a \"quoted\" \\ line\n" || recs[1]["stream"] != "stderr" {
		t.Errorf("record 1 = %v", recs[1])
	}
	attrs, _ := recs[0]["attrs"].(map[string]any)
	if attrs["APP"] != "demo" || attrs["team"] != "core" || attrs["SECRET"] != nil {
		t.Errorf("attrs = %v", attrs)
	}
	m := seals[0].Meta
	if !strings.HasPrefix(m.Key, "web/2026/11/27/20261127T154405.123Z_abababababab_") || m.Destination.Bucket != "logs" || m.Destination.Region != "" {
		t.Errorf("meta = %+v", m)
	}
	waitFor(t, func() bool { return e.d.Streams() == 0 })
	if files, _ := os.ReadDir(e.state); len(files) != 0 {
		t.Errorf("saved stream left after EOF: %v", files)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in time")
}

func TestStartLoggingRefusals(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("c1")
	defer w.Close()
	cases := []struct {
		name string
		file string
		cfg  map[string]string
		want error
	}{
		{"missing file", "", map[string]string{"bucket": "logs"}, ErrMissingFile},
		{"outside the FIFO folder", "/etc/passwd", map[string]string{"bucket": "logs"}, ErrBadFile},
		{"dot-dot", e.fifos + "/../c1", map[string]string{"bucket": "logs"}, ErrBadFile},
		{"relative", "c1", map[string]string{"bucket": "logs"}, ErrBadFile},
	}
	for _, c := range cases {
		if err := e.d.StartLogging(c.file, info(c.cfg)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs", "nope": "1"})); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown option: %v", err)
	}
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
		t.Fatal(err)
	}
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	e.d.StopLogging("/run/docker/logging/unknown") // must not panic or fail
}

func TestCorruptStreamIsDrainedAndOthersGoOn(t *testing.T) {
	e := newEnv(t)
	bad, wb := e.fifo("bad")
	good, wg := e.fifo("good")
	cfg := map[string]string{"bucket": "logs"}
	i1, i2 := info(cfg), info(cfg)
	i2.ContainerID = strings.Repeat("cd", 32)
	if err := e.d.StartLogging(bad, i1); err != nil {
		t.Fatal(err)
	}
	if err := e.d.StartLogging(good, i2); err != nil {
		t.Fatal(err)
	}
	ok := frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: 1, Line: []byte("before")})
	wb.Write(ok)
	wb.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}) // a 4 GiB frame length
	// The reader keeps draining: a large write does not block.
	done := make(chan struct{})
	go func() { wb.Write(make([]byte, 4*pipeSize)); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer blocked on a corrupt stream")
	}
	wg.Write(frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: 1, Line: []byte("fine")}))
	wb.Close()
	wg.Close()
	seals := e.q.wait(t, 2)
	for _, s := range seals {
		recs := readSegment(t, s)
		if len(recs) != 1 {
			t.Fatalf("%s: %v", s.Meta.Container.ID, recs)
		}
	}
}

func TestReattachAfterCrash(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("c1")
	defer w.Close()
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs", "env": "APP"})); err != nil {
		t.Fatal(err)
	}
	saved, _ := filepath.Glob(filepath.Join(e.state, "*.json"))
	if len(saved) != 1 {
		t.Fatalf("saved streams: %v", saved)
	}
	b, _ := os.ReadFile(saved[0])
	if bytes.Contains(b, []byte("hunter2")) {
		t.Fatal("the saved stream holds the container's environment")
	}
	// Simulate a restarted plugin: a second Driver on the same state, after
	// the first one is shut down (its FIFO handle closed, saved state kept).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e.spool.Close() // the spool's lock goes with the old process
	e.openDriver(filepath.Join(filepath.Dir(e.state), "segments"))
	n, err := e.d.Reattach(nil)
	if err != nil || n != 1 {
		t.Fatalf("Reattach = %d, %v", n, err)
	}
	// A re-attached FIFO is read in resync mode, which takes only frames
	// with a plausible (recent) timestamp, as Docker writes them.
	w.Write(frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: time.Now().UnixNano(), Line: []byte("after restart")}))
	w.Close()
	seals := e.q.wait(t, 1)
	recs := readSegment(t, seals[len(seals)-1])
	if recs[len(recs)-1]["log"] != "after restart\n" {
		t.Fatalf("records after re-attach: %v", recs)
	}
}

func TestHTTPHandler(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(Handler(e.d, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	post := func(path, body string) map[string]any {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	if m := post("/LogDriver.Capabilities", ""); m["Cap"].(map[string]any)["ReadLogs"] != false {
		t.Errorf("Capabilities = %v", m)
	}
	if m := post("/LogDriver.StartLogging", "{not json"); !strings.Contains(m["Err"].(string), "bad StartLogging request") {
		t.Errorf("malformed JSON: %v", m)
	}
	if m := post("/LogDriver.StartLogging", `{"Info":{}}`); !strings.Contains(m["Err"].(string), "missing File") {
		t.Errorf("missing File: %v", m)
	}
	if m := post("/LogDriver.StartLogging", `{"File":"/run/docker/logging/x","Info":{"Config":{"bucket":"b","segment-size":"10XB"}}}`); !strings.Contains(m["Err"].(string), "FIFO") {
		t.Errorf("bad path: %v", m)
	}
	if m := post("/LogDriver.StopLogging", `{"File":"/nowhere"}`); m["Err"] != "" {
		t.Errorf("StopLogging for an unknown File: %v", m)
	}
	if m := post("/LogDriver.StopLogging", `garbage`); m["Err"] != "" {
		t.Errorf("StopLogging with garbage: %v", m)
	}
	if m := post("/Plugin.Activate", ""); m["Implements"] == nil {
		t.Errorf("Activate = %v", m)
	}
}

func TestHostileNamesStayInsideTheSpool(t *testing.T) {
	e := newEnv(t)
	names := []string{"/../../etc/passwd", "/a/../../b", "/\x00\x1b[31m\x7f", "/" + strings.Repeat("x", 300), "/\xff\xfe..", "/", ""}
	for i, name := range names {
		path, w := e.fifo(fmt.Sprintf("c%d", i))
		in := info(map[string]string{"bucket": "logs", "prefix": "{{.Name}}/{{.ImageName}}/{{.DaemonName}}/"})
		in.ContainerID = fmt.Sprintf("%02x%062x", i+1, 0)
		in.ContainerName = name
		in.ContainerImageName = "../../img\n"
		in.DaemonName = ".."
		if err := e.d.StartLogging(path, in); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		w.Write(frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: 1, Line: []byte("x")}))
		w.Close()
	}
	seals := e.q.wait(t, len(names))
	keys := map[string]bool{}
	for _, s := range seals {
		k := s.Meta.Key
		if keys[k] {
			t.Errorf("key %q used twice", k)
		}
		keys[k] = true
		if len(k) > 1024 || strings.HasPrefix(k, "/") || !utf8.ValidString(k) {
			t.Errorf("unsafe key %q", k)
		}
		for _, el := range strings.Split(k, "/") {
			if el == "" || el == "." || el == ".." || strings.ContainsAny(el, "\x00\n\x1b\x7f") {
				t.Errorf("key %q has element %q", k, el)
			}
		}
		if !strings.HasPrefix(s.Path(), filepath.Dir(e.state)) {
			t.Errorf("segment %s outside the spool", s.Path())
		}
	}
}

func TestPipeIsGrown(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("c1")
	defer w.Close()
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
		t.Fatal(err)
	}
	const fGetPipeSz = 1032
	size, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), fGetPipeSz, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if size < pipeSize {
		t.Fatalf("pipe size %d, want %d", size, pipeSize)
	}
}

// TestAllowedEndpoints: with ALLOWED_ENDPOINTS set, StartLogging refuses
// an endpoint the setting does not allow, naming the option, and accepts
// an allowed one; a saved stream whose endpoint is no longer allowed is
// still read (the container never blocks) but nothing is stored.
func TestAllowedEndpoints(t *testing.T) {
	e := newEnv(t)
	pol, err := logopt.ParseEndpointPolicy("minio.internal:9000")
	if err != nil {
		t.Fatal(err)
	}
	e.d.cfg.AllowedEndpoints = pol
	path, w := e.fifo("c1")
	defer w.Close()
	err = e.d.StartLogging(path, info(map[string]string{"bucket": "logs", "endpoint": "http://10.1.2.3:9000"}))
	if !errors.Is(err, logopt.ErrNotAllowed) || !strings.Contains(err.Error(), "endpoint") {
		t.Fatalf("disallowed endpoint: %v", err)
	}
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs", "endpoint": "http://minio.internal:9000"})); err != nil {
		t.Fatalf("allowed endpoint refused: %v", err)
	}
	// The admin tightens the setting; the plugin restarts.
	e.restart(t)
	none, _ := logopt.ParseEndpointPolicy("none")
	e.d.cfg.AllowedEndpoints = none
	if n, err := e.d.Reattach(nil); err != nil || n != 1 {
		t.Fatalf("Reattach = %d, %v", n, err)
	}
	e.readNotStored(t, w)
}
