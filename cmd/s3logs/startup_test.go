package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/segment"
)

// The test binary doubles as the plugin (S3LOGS_TEST_PLUGIN=1) and as the
// crashed process that leaves in-progress files behind
// (S3LOGS_TEST_LEAVE_PARTIALS=<root>:<count>), so that both run as separate
// processes, as they do for real.
func TestMain(m *testing.M) {
	if os.Getenv("S3LOGS_TEST_PLUGIN") == "1" {
		if err := run(); err != nil {
			fmt.Fprintln(os.Stderr, "s3logs:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv("S3LOGS_TEST_LEAVE_PARTIALS"); spec != "" {
		root, count, _ := strings.Cut(spec, ":")
		var n int
		fmt.Sscan(count, &n)
		if err := leavePartials(root, n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0) // the "crash": Writers never closed
	}
	os.Exit(m.Run())
}

// leavePartials writes n in-progress segments of about 64 KiB of records
// each, one per container, flushed but never sealed.
func leavePartials(root string, n int) error {
	sp, err := segment.Open(segment.Config{Root: root, Logger: slog.New(slog.DiscardHandler), NoTicker: true})
	if err != nil {
		return err
	}
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("%064x", i+1)
		w, err := sp.NewWriter(segment.WriterOptions{
			Container:   segment.Container{ID: id, Name: "/c"},
			Destination: segment.Destination{Bucket: "b", Endpoint: "http://127.0.0.1:1", ForcePathStyle: true},
			Key:         func(first time.Time, seq uint64) string { return fmt.Sprintf("k/%s/%d", id, seq) },
		})
		if err != nil {
			return err
		}
		for j := range 1000 {
			rec := fmt.Appendf(nil, `{"log":"container %d line %d\n","stream":"stdout","time":"%s"}`+"\n", i, j, now.UTC().Format(time.RFC3339Nano))
			if err := w.Append(now, rec); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// sealedSegments writes n sealed segments (data and sidecar) directly.
func sealedSegments(t *testing.T, root string, n int) {
	t.Helper()
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	data := enc.EncodeAll([]byte(`{"log":"x\n","stream":"stdout","time":"2026-11-30T00:00:00Z"}`+"\n"), nil)
	first := time.Now().Add(-time.Hour).UTC()
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("%064x", 100000+i%500))
		os.MkdirAll(dir, 0o700)
		name := fmt.Sprintf("%012d%s", 1_000_000+i, segment.DataSuffix)
		m := segment.Meta{Version: segment.MetaVersion, Key: "k/" + name,
			Destination: segment.Destination{Bucket: "b", Endpoint: "http://127.0.0.1:1", ForcePathStyle: true},
			Container:   segment.Container{ID: filepath.Base(dir), Name: "/c"}, Seq: uint64(1_000_000 + i),
			FirstTime: first, LastTime: first, Records: 1, RawBytes: 60, CompressedBytes: int64(len(data)), Reason: segment.ReasonSize, SealedAt: first}
		b, _ := json.Marshal(m)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+segment.MetaSuffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartupDoesNotHoldTheAPI: with a large spool left by a crash (300
// in-progress files and 10,000 sealed segments, S3 unreachable), a new
// container's StartLogging is answered while the recovery of the old files
// is still going on, and its stream works. The time to that answer is
// logged (MEASURE); the assertion is the order of events, not a time.
func TestStartupDoesNotHoldTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 10,000-segment spool")
	}
	dir := t.TempDir()
	spoolDir, fifoDir := filepath.Join(dir, "spool"), filepath.Join(dir, "fifos")
	root := filepath.Join(spoolDir, "segments")
	os.MkdirAll(fifoDir, 0o700)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	leave := exec.Command(self)
	leave.Env = append(os.Environ(), "S3LOGS_TEST_LEAVE_PARTIALS="+root+":300")
	if out, err := leave.CombinedOutput(); err != nil {
		t.Fatalf("leaving in-progress files: %v\n%s", err, out)
	}
	sealedSegments(t, root, 10_000)
	partials, _ := filepath.Glob(filepath.Join(root, "*", "*.partial"))
	if len(partials) != 300 {
		t.Fatalf("%d in-progress files, want 300", len(partials))
	}

	sock := filepath.Join(dir, "s3logs.sock")
	var logBuf syncBuffer
	plugin := exec.Command(self)
	plugin.Env = append(os.Environ(), "S3LOGS_TEST_PLUGIN=1", "SPOOL_DIR="+spoolDir, "S3LOGS_SOCKET="+sock,
		"S3LOGS_FIFO_DIR="+fifoDir, "SPOOL_LIMIT=10g", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true")
	plugin.Stdout, plugin.Stderr = &logBuf, &logBuf
	begin := time.Now()
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		plugin.Process.Signal(syscall.SIGTERM)
		plugin.Wait()
	})
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	fifo := filepath.Join(fifoDir, "new")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	body := fmt.Sprintf(`{"File":%q,"Info":{"ContainerID":"%064x","ContainerName":"/new","Config":{"bucket":"logs","endpoint":"http://127.0.0.1:1"}}}`, fifo, 999999)
	var answered time.Duration
	for {
		resp, err := client.Post("http://plugin/LogDriver.StartLogging", "application/json", strings.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"Err":""`)) {
				t.Fatalf("StartLogging: %d %s", resp.StatusCode, b)
			}
			answered = time.Since(begin)
			break
		}
		if time.Since(begin) > time.Minute {
			t.Fatalf("no answer from the plugin: %v\n%s", err, logBuf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	recoveredAtAnswer := strings.Count(logBuf.String(), "segment recovered")
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(logBuf.String(), "recovered in-progress segments") {
		if time.Now().After(deadline) {
			t.Fatalf("recovery did not finish:\n%s", logBuf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	recoveryDone := time.Since(begin)
	t.Logf("MEASURE startup: spool of 300 in-progress and 10,000 sealed segments: first StartLogging answered after %v (%d of 300 files repaired by then); recovery done after %v",
		answered.Round(time.Millisecond), recoveredAtAnswer, recoveryDone.Round(time.Millisecond))
	if recoveredAtAnswer >= 300 {
		t.Errorf("StartLogging was answered only after the whole recovery")
	}
	if left, _ := filepath.Glob(filepath.Join(root, "*", "*.partial")); len(left) != 0 {
		t.Errorf("%d in-progress files left after recovery", len(left))
	}
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
