package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPluginServesMetricsAndHealth runs the plugin as its own process with
// METRICS_ADDR and PPROF set: /healthz answers ok once the API, the spool
// and its lock are fine, /metrics carries the plugin's metrics and the Go
// and process collectors, pprof answers, and /healthz fails, naming the
// check, once the spool's lock file is replaced behind the plugin's back.
func TestPluginServesMetricsAndHealth(t *testing.T) {
	dir := t.TempDir()
	spoolDir, fifoDir := filepath.Join(dir, "spool"), filepath.Join(dir, "fifos")
	os.MkdirAll(fifoDir, 0o700)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	plugin := exec.Command(self)
	plugin.Env = append(os.Environ(), "S3LOGS_TEST_PLUGIN=1", "SPOOL_DIR="+spoolDir, "S3LOGS_SOCKET="+filepath.Join(dir, "s3logs.sock"),
		"S3LOGS_FIFO_DIR="+fifoDir, "SPOOL_LIMIT=64m", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "METRICS_ADDR="+addr, "PPROF=true")
	plugin.Stdout, plugin.Stderr = &logBuf, &logBuf
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		plugin.Process.Signal(syscall.SIGTERM)
		plugin.Wait()
	})
	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := get("/healthz")
		if err == nil && code == 200 {
			if body != "ok\napi: ok\nspool_writable: ok\nspool_lock: ok\n" {
				t.Errorf("/healthz: %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not ok within 30 s: %d %q %v\n%s", code, body, err, logBuf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body, err := get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, want := range []string{"\ns3logs_spool_limit_bytes 6.7108864e+07\n", "\ns3logs_streams_open 0\n",
		"\ns3logs_shipping_lag_seconds 0\n", "\ngo_goroutines ", "\nprocess_resident_memory_bytes "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	if code, body, err := get("/debug/pprof/"); err != nil || code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with PPROF=true: %d %v", code, err)
	}
	lock := filepath.Join(spoolDir, "segments", ".lock")
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body, err := get("/healthz"); err != nil || code != 503 || !strings.Contains(body, "spool_lock: FAIL") || !strings.Contains(body, "api: ok") {
		t.Errorf("/healthz with the lock file replaced: %d %q %v", code, body, err)
	}
	// SIGTERM: the plugin exits, and the metrics address closes with it.
	plugin.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- plugin.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("plugin exit: %v\n%s", err, logBuf.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("plugin did not exit after SIGTERM")
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Error("metrics address still answers after the plugin exited")
	}
}
