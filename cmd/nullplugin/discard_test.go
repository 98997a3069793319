package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func post(t *testing.T, srv *httptest.Server, path, body string) string {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d, %v", path, resp.StatusCode, err)
	}
	return strings.TrimSpace(string(b))
}

// TestDiscardsToEOF plays Docker: it holds the FIFO read-write, starts
// logging, writes, stops logging (which must reply at once while the FIFO is
// still open and full) and closes; the plugin must read every byte.
func TestDiscardsToEOF(t *testing.T) {
	d := newDiscarder(slog.New(slog.DiscardHandler), 4096, 0)
	srv := httptest.NewServer(d.handler())
	defer srv.Close()

	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := post(t, srv, "/LogDriver.StartLogging", `{"File":"`+fifo+`","Info":{"ContainerID":"abc"}}`); got != `{"Err":""}` {
		t.Fatalf("StartLogging replied %s", got)
	}
	if got := post(t, srv, "/LogDriver.StartLogging", `{"File":"`+fifo+`"}`); !strings.Contains(got, "already being read") {
		t.Fatalf("second StartLogging replied %s", got)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB, far more than a pipe holds
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got := post(t, srv, "/LogDriver.StopLogging", `{"File":"`+fifo+`"}`); got != `{"Err":""}` {
		t.Fatalf("StopLogging replied %s", got)
	}
	// The FIFO stays open until after the reply, so a StopLogging that
	// waited for the reader's EOF would never answer; 10 s catches that
	// with room for a loaded machine.
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("StopLogging took %v", el)
	}
	w.Close()
	deadline := time.Now().Add(10 * time.Second)
	for d.streams() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("reader did not reach EOF")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := d.discarded.Load(); got != int64(len(data)) {
		t.Fatalf("discarded %d bytes, want %d", got, len(data))
	}
}

func TestGrowPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fifo, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := pipeSize(f)
	growPipe(f, 1<<20)
	if got := pipeSize(f); got != 1<<20 {
		t.Fatalf("pipe size %d after growPipe(1 MiB), was %d", got, before)
	}
}

func TestProtocolReplies(t *testing.T) {
	d := newDiscarder(slog.New(slog.DiscardHandler), 4096, 0)
	srv := httptest.NewServer(d.handler())
	defer srv.Close()
	for _, tc := range []struct{ path, body, want string }{
		{"/LogDriver.Capabilities", `{}`, `{"Cap":{"ReadLogs":false}}`},
		{"/Plugin.Activate", `{}`, `{"Implements":["LogDriver"]}`},
		{"/LogDriver.StopLogging", `{"File":"/nonexistent"}`, `{"Err":""}`},
		{"/LogDriver.StopLogging", `not json`, `{"Err":""}`},
		{"/LogDriver.StartLogging", `{"File":""}`, `{"Err":"nullplugin: missing File"}`},
		{"/LogDriver.ReadLogs", `{}`, `{"Err":"nullplugin: reading logs is not supported"}`},
	} {
		if got := post(t, srv, tc.path, tc.body); got != tc.want {
			t.Errorf("%s %s: got %s, want %s", tc.path, tc.body, got, tc.want)
		}
	}
	if got := post(t, srv, "/LogDriver.StartLogging", `{"File":"/nonexistent/fifo"}`); !strings.HasPrefix(got, `{"Err":"nullplugin: open`) {
		t.Errorf("StartLogging of a missing FIFO: %s", got)
	}
}

// TestCloseAll checks that closeAll ends readers of FIFOs Docker still holds.
func TestCloseAll(t *testing.T) {
	d := newDiscarder(slog.New(slog.DiscardHandler), 4096, 0)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := d.start(fifo); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { d.closeAll(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("closeAll did not return")
	}
	if d.streams() != 0 {
		t.Fatal("stream still registered")
	}
}
