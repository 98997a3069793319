package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3logs/s3logs/driver"
	"github.com/s3logs/s3logs/metrics"
	"github.com/s3logs/s3logs/segment"
	"github.com/s3logs/s3logs/uploader"
)

// serveMetrics registers the metrics that read spool, drv and up on reg and
// serves them with /healthz (and, with PPROF, /debug/pprof/) on
// METRICS_ADDR. A listener that cannot be opened is logged and the plugin
// goes on without it: logging matters more than its metrics. It returns
// the server to close at exit, or nil.
func serveMetrics(log *slog.Logger, cfg config, reg *prometheus.Registry, spool *segment.Spool, drv *driver.Driver, up *uploader.Uploader) *http.Server {
	if err := metrics.Register(reg, metrics.Sources{Driver: drv, Spool: spool, Uploader: up}); err != nil {
		log.Error("metrics: cannot register; not serving them", "err", err)
		return nil
	}
	checks := []metrics.Check{
		{Name: "api", Run: apiCheck(cfg.socket)},
		{Name: "spool_writable", Run: func(context.Context) error { return spool.CheckWritable() }},
		{Name: "spool_lock", Run: func(context.Context) error { return spool.CheckLock() }},
	}
	ln, err := net.Listen("tcp", cfg.metricsAddr)
	if err != nil {
		log.Error("metrics: cannot listen; the plugin runs without /metrics and /healthz", "metrics_addr", cfg.metricsAddr, "err", err)
		return nil
	}
	srv := &http.Server{
		Handler:           metrics.Handler(reg, metrics.HandlerOptions{Checks: checks, Pprof: cfg.pprof, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics: server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "metrics_addr", ln.Addr().String(), "pprof", cfg.pprof)
	return srv
}

// apiCheck returns the health check of the plugin API: a Capabilities
// request over the API's own socket, which answers only while the API is
// served.
func apiCheck(socket string) func(ctx context.Context) error {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugin/LogDriver.Capabilities", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("plugin API on %s: %w", socket, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("plugin API on %s: Capabilities answered %s", socket, resp.Status)
		}
		return nil
	}
}
