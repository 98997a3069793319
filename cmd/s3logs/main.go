// Command s3logs is the s3logs Docker logging plugin: it serves the
// logging-driver protocol on /run/docker/plugins/s3logs.sock, keeps each
// container's logs in zstd segments under SPOOL_DIR and uploads them to S3.
//
// Environment (set with `docker plugin set`):
//
//	SPOOL_DIR           spool folder (default /var/lib/s3logs, the "spool" mount)
//	SPOOL_LIMIT         cap on spooled bytes: a size (10g) or a share of the
//	                    spool's filesystem (25%, the default)
//	SPOOL_POLICY        drop-oldest (default) or block, when the spool is full
//	UPLOAD_BACKOFF_MAX  longest wait between upload retries (default 5m)
//	LOG_LEVEL           debug, info, warn or error (default info)
//	AWS_*               credentials and region for the AWS SDK's default chain
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/s3logs/s3logs/driver"
	"github.com/s3logs/s3logs/segment"
	"github.com/s3logs/s3logs/uploader"
)

// Timings of a shutdown: Docker kills the plugin 10 s after SIGTERM.
const (
	sealTimeout   = 2 * time.Second
	uploadTimeout = 5 * time.Second
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "s3logs:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig(os.Getenv, filesystemSize)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.level}))

	// Listen first: Docker gives a freshly enabled plugin about 9 s to
	// answer, and connections queue in the backlog until Serve accepts them.
	if err := os.MkdirAll(filepath.Dir(cfg.socket), 0o755); err != nil {
		return err
	}
	os.Remove(cfg.socket)
	ln, err := net.Listen("unix", cfg.socket)
	if err != nil {
		return err
	}
	defer ln.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The uploader exists before the spool so that segments the spool's
	// janitor repairs can be handed to it; it starts after recovery.
	up, err := uploader.New(uploader.Config{Root: filepath.Join(cfg.spoolDir, "segments"), Logger: log, BackoffCap: cfg.backoffMax})
	if err != nil {
		return err
	}
	spool, err := segment.Open(segment.Config{
		Root:        filepath.Join(cfg.spoolDir, "segments"),
		Logger:      log,
		RecordTime:  driver.RecordTime,
		Limit:       cfg.spoolLimit,
		Policy:      cfg.policy,
		OnRecovered: func(s segment.Sealed) { up.Enqueue(s, false) },
	})
	if err != nil {
		return err
	}
	defer spool.Close()
	if reps, err := spool.Recover(); err != nil {
		log.Error("recovering in-progress segments", "err", err)
	} else if len(reps) > 0 {
		log.Info("recovered in-progress segments", "count", len(reps))
	}

	if err := up.Start(ctx); err != nil {
		return err
	}

	host, _ := os.Hostname()
	drv, err := driver.New(driver.Config{
		Spool:         spool,
		Uploader:      up,
		StateDir:      filepath.Join(cfg.spoolDir, "streams"),
		Hostname:      host,
		DefaultRegion: os.Getenv("AWS_REGION"),
		Logger:        log,
	})
	if err != nil {
		return err
	}
	if n, err := drv.Reattach(); err != nil {
		log.Error("re-attaching saved streams", "err", err, "resumed", n)
	} else if n > 0 {
		log.Info("re-attached saved streams", "resumed", n)
	}

	srv := &http.Server{Handler: driver.Handler(drv, log), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("s3logs started", "socket", cfg.socket, "spool", cfg.spoolDir,
		"spool_limit", cfg.spoolLimit, "spool_policy", cfg.policy, "upload_backoff_max", cfg.backoffMax)

	select {
	case <-ctx.Done():
		log.Info("shutting down: sealing open segments")
	case err := <-serveErr:
		log.Error("plugin API stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), sealTimeout)
	srv.Shutdown(sctx)
	spool.Close() // no more waiting for space: streams must end now
	if err := drv.Shutdown(sctx); err != nil {
		log.Error("sealing segments", "err", err)
	}
	cancel()
	uctx, cancel := context.WithTimeout(context.Background(), uploadTimeout)
	defer cancel()
	if err := up.Close(uctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("stopping uploads", "err", err)
	}
	log.Info("s3logs stopped", "pending_uploads", up.Pending())
	return nil
}
