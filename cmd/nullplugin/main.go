// Command nullplugin is a Docker logging plugin that reads every FIFO and
// discards what it reads: the physical limit of any logging plugin on an
// engine, which the benchmark harness (bench/) measures s3logs against.
//
// It serves the same protocol as s3logs (StartLogging, StopLogging,
// Capabilities with ReadLogs false, ReadLogs refused) on
// /run/docker/plugins/$SOCKET (default s3logs-null.sock). Each FIFO is read
// by one goroutine through a 1 MiB bufio.Reader, one read(2) per fill, and
// the bytes are dropped. Like s3logs it asks for a 1 MiB FIFO capacity
// (F_SETPIPE_SZ; env PIPE_SIZE, 0 keeps the kernel's 64 KiB), so both read
// the same pipe. StopLogging replies at once; the reader goes on to
// EOF by itself. At EOF the plugin logs the stream's byte count to stdout
// (the dockerd log). It is packaged by `make nullplugin` from
// bench/nullplugin/config.json.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nullplugin:", err)
		os.Exit(1)
	}
}

func run() error {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	sock := os.Getenv("SOCKET")
	if sock == "" {
		sock = "s3logs-null.sock"
	}
	path := filepath.Join("/run/docker/plugins", sock)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	defer ln.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ps := defaultPipeSize
	if v := os.Getenv("PIPE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("PIPE_SIZE=%q: want a byte count, 0 to keep the default pipe", v)
		}
		ps = n
	}
	d := newDiscarder(log, bufSize, ps)
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("nullplugin started", "socket", path)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	d.closeAll()
	return nil
}
