// Command s3logs is the s3logs Docker logging plugin and its command-line
// reader, in one binary.
//
//	s3logs logs [OPTIONS] CONTAINER...    print logs from S3 as docker logs does
//	s3logs ls [OPTIONS] [CONTAINER...]    list containers and segments in S3
//	s3logs plugin                         run as the plugin (its entrypoint)
//
// As the plugin it serves the logging-driver protocol on
// /run/docker/plugins/s3logs.sock, keeps each container's logs in zstd
// segments under SPOOL_DIR and uploads them to S3.
//
// Plugin environment (set with `docker plugin set`):
//
//	SPOOL_DIR           spool folder (default /var/lib/s3logs, the "spool" mount)
//	S3LOGS_SOCKET       the API socket (default /run/docker/plugins/s3logs.sock)
//	S3LOGS_FIFO_DIR     where Docker's FIFOs are (default /run/docker/logging);
//	                    these two exist for tests that run the plugin outside Docker
//	SPOOL_LIMIT         cap on sealed segments waiting for upload: a size (10g) or a share of the
//	                    spool's filesystem (25%, the default)
//	SPOOL_POLICY        drop-oldest (default) or block, when the spool is full
//	UPLOAD_BACKOFF_MAX  longest wait between upload retries (default 5m)
//	JOURNAL_LIMIT       most bytes of a burst a stream's journal holds (default 256m; 0: no journals)
//	LOG_LEVEL           debug, info, warn or error (default info)
//	ALLOWED_ENDPOINTS   endpoints log-opts may name (default: any; see README)
//	READ_LOGS           true: serve docker logs from S3 and the spool (default false)
//	METRICS_ADDR        host:port of /metrics and /healthz (default empty: none)
//	PPROF               true: also serve net/http/pprof there (default false)
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3logs/s3logs/driver"
	"github.com/s3logs/s3logs/metrics"
	"github.com/s3logs/s3logs/readlogs"
	"github.com/s3logs/s3logs/segment"
	"github.com/s3logs/s3logs/uploader"
)

// Timings of a shutdown. Docker sends the plugin SIGTERM and kills it 10 s
// later (measured on Engine 20.10: see the README's Guarantees), so all of
// it fits in shutdownBudget: streams of stopped containers read on to EOF
// for up to streamsBudget while the uploader sends what they seal, then the
// uploader drains the spool until the budget is spent, then in-flight
// uploads are cancelled. streamsBudget leaves room for a journal's backlog
// (up to JOURNAL_LIMIT, 256 MiB: 1-2 s of a core's compression; 1.0-1.6 s
// measured at the worst moment) on a slower or busier host, and 4 s for the
// last segments' uploads.
const (
	shutdownBudget = 9 * time.Second
	streamsBudget  = 5 * time.Second
	cancelBudget   = 300 * time.Millisecond
)

// Bounds of the tail read from a repaired segment to recognise the records
// a re-attached FIFO repeats: more than the FIFO bytes a stream can have
// stored and not yet consumed (one 64 KiB read plus a held partial line).
const (
	dedupRecords = 16384
	dedupBytes   = 4 << 20
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "plugin" {
		if err := run(); err != nil {
			fmt.Fprintln(os.Stderr, "s3logs:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := cli(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func run() error {
	cfg, err := loadConfig(os.Getenv, filesystemSize)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.level}))

	// Metrics only when asked for: one registry, no global.
	var reg *prometheus.Registry
	var uploads uploader.Observer
	if cfg.metricsAddr != "" {
		reg = prometheus.NewRegistry()
		u, err := metrics.NewUploads(reg)
		if err != nil {
			return err
		}
		uploads = u
	}

	// The uploader exists before the spool so that segments the spool's
	// janitor repairs can be handed to it; it starts after re-attach.
	var spool *segment.Spool // opened below, before the uploader starts
	up, err := uploader.New(uploader.Config{
		Root:       filepath.Join(cfg.spoolDir, "segments"),
		Logger:     log,
		BackoffCap: cfg.backoffMax,
		Scan:       func() ([]segment.Sealed, error) { return spool.ScanSealed() },
		Observer:   uploads,
	})
	if err != nil {
		return err
	}
	// Opening the spool takes its lock: one plugin instance per folder.
	spool, err = segment.Open(segment.Config{
		Root:        filepath.Join(cfg.spoolDir, "segments"),
		Logger:      log,
		RecordTime:  driver.RecordTime,
		Limit:       cfg.spoolLimit,
		Policy:      cfg.policy,
		OnRecovered: func(s segment.Sealed) { up.Enqueue(s, false) },
	})
	if errors.Is(err, segment.ErrLocked) {
		return fmt.Errorf("%w: another s3logs plugin instance (another alias?) uses the spool folder %s; give each instance its own folder with `docker plugin set ALIAS spool.source=/var/lib/s3logs-ALIAS` while it is disabled", err, cfg.spoolDir)
	}
	if err != nil {
		return err
	}
	defer spool.Close()
	// What an earlier process left in progress is listed before any new
	// stream can write, and repaired in the background.
	partials, err := spool.ListPartials()
	if err != nil {
		log.Error("listing in-progress segments", "err", err)
	}

	// Listen before the slow work: Docker gives a freshly enabled plugin
	// about 9 s to answer.
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

	host, _ := os.Hostname()
	var drv *driver.Driver // set below; ReadLogs requests need it only after start
	var readLogs http.Handler
	if cfg.readLogs {
		readLogs = readlogs.New(readlogs.Config{
			Spool:  spool,
			Logger: log,
			Follow: func(id string) (readlogs.Follower, bool) {
				f, ok := drv.Follow(id)
				if !ok {
					return nil, false
				}
				return f, true
			},
		})
	}
	drv, err = driver.New(driver.Config{
		ReadLogs:         readLogs,
		Spool:            spool,
		Uploader:         up,
		StateDir:         filepath.Join(cfg.spoolDir, "streams"),
		FIFODir:          cfg.fifoDir,
		Hostname:         host,
		Logger:           log,
		AllowedEndpoints: cfg.allowedEndpoints,
		JournalLimit:     cfg.journalLimit,
	})
	if err != nil {
		return err
	}

	srv := &http.Server{Handler: driver.Handler(drv, log), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if reg != nil {
		// Closed last (deferred): scrapes see the shutdown too.
		if msrv := serveMetrics(log, cfg, reg, spool, drv, up); msrv != nil {
			defer msrv.Close()
		}
	}

	// Start-up work runs while the API already answers; its goroutine ends
	// by itself, and shutdown waits for it briefly.
	startupDone := make(chan struct{})
	go func() {
		defer close(startupDone)
		startup(ctx, log, cfg, spool, up, drv, partials)
	}()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("plugin API stopped", "err", err)
	}
	return shutdown(log, srv, spool, drv, up, startupDone)
}

// startup repairs what an earlier process left and resumes its streams:
// first the segments of the containers whose FIFOs are re-attached (their
// repaired tails tell which records the FIFO repeats), then the re-attach,
// then the uploader (which finds every sealed segment in the spool), then
// the other in-progress files.
func startup(ctx context.Context, log *slog.Logger, cfg config, spool *segment.Spool, up *uploader.Uploader, drv *driver.Driver, partials []segment.Partial) {
	begin := time.Now()
	saved := map[string]bool{}
	for _, id := range drv.SavedContainers() {
		saved[id] = true
	}
	newest := map[string]segment.Sealed{}
	var rest []segment.Partial
	for _, p := range partials {
		if !saved[p.Container()] {
			rest = append(rest, p)
			continue
		}
		r := spool.RecoverPartial(p)
		if r.Sealed != nil {
			if old, ok := newest[p.Container()]; !ok || r.Sealed.Meta.Seq > old.Meta.Seq {
				newest[p.Container()] = *r.Sealed
			}
		}
	}
	tails := map[string][][]byte{}
	for id, seg := range newest {
		t, err := segment.ReadTail(seg.Path(), dedupRecords, dedupBytes)
		if err != nil {
			log.Warn("reading the end of a repaired segment; records its FIFO repeats may be stored twice", "path", seg.Path(), "err", err)
		}
		tails[id] = t
	}
	if n, err := drv.Reattach(func(id string) [][]byte { return tails[id] }); err != nil {
		log.Error("re-attaching saved streams", "err", err, "resumed", n)
	} else if n > 0 {
		log.Info("re-attached saved streams", "resumed", n)
	}
	if err := up.Start(context.Background()); err != nil {
		log.Error("starting the uploader", "err", err)
		return
	}
	log.Info("s3logs started", "socket", cfg.socket, "spool", cfg.spoolDir,
		"spool_limit", cfg.spoolLimit, "spool_policy", cfg.policy, "upload_backoff_max", cfg.backoffMax, "journal_limit", cfg.journalLimit,
		"allowed_endpoints", cfg.allowedEndpoints.String(), "metrics_addr", cfg.metricsAddr,
		"startup", time.Since(begin).Round(time.Millisecond))
	recovered := 0
	for _, p := range rest {
		if ctx.Err() != nil {
			return // the next start repairs the rest
		}
		if r := spool.RecoverPartial(p); r.Sealed != nil {
			up.Enqueue(*r.Sealed, false)
			recovered++
		}
	}
	if len(rest) > 0 {
		log.Info("recovered in-progress segments", "count", recovered, "took", time.Since(begin).Round(time.Millisecond))
	}
}

// shutdown stops the API, ends every stream at a frame boundary (stopped
// containers' streams read on to EOF first), then uploads what the spool
// holds until the budget is spent, all within Docker's 10 s.
func shutdown(log *slog.Logger, srv *http.Server, spool *segment.Spool, drv *driver.Driver, up *uploader.Uploader, startupDone <-chan struct{}) error {
	begin := time.Now()
	log.Info("shutting down: ending streams, then uploading", "budget", shutdownBudget)
	sctx, cancel := context.WithDeadline(context.Background(), begin.Add(streamsBudget))
	defer cancel()
	srv.Shutdown(sctx)
	spool.Close() // no more waiting for space: streams must end now
	if err := drv.Shutdown(sctx); err != nil {
		log.Error("ending streams", "err", err)
	}
	select {
	case <-startupDone:
	case <-sctx.Done():
	}
	dctx, cancel2 := context.WithDeadline(context.Background(), begin.Add(shutdownBudget-cancelBudget))
	defer cancel2()
	if err := up.Drain(dctx); err != nil && !errors.Is(err, uploader.ErrClosed) {
		log.Warn("shutdown budget spent before every segment was uploaded; they stay in the spool for the next start", "pending_uploads", up.Pending(), "err", err)
	}
	cctx, cancel3 := context.WithTimeout(context.Background(), cancelBudget)
	defer cancel3()
	if err := up.Close(cctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("stopping uploads", "err", err)
	}
	log.Info("s3logs stopped", "pending_uploads", up.Pending(), "took", time.Since(begin).Round(time.Millisecond))
	return nil
}
