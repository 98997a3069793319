package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s3logs/s3logs/driver"
	"github.com/s3logs/s3logs/driver/logopt"
	"github.com/s3logs/s3logs/segment"
)

// Defaults of the plugin settings.
const (
	defaultSpoolLimit = "25%"
	defaultBackoffMax = 5 * time.Minute
	// defaultJournalLimit is driver.DefaultJournalLimit as a setting.
	defaultJournalLimit = "256m"
)

// config is what the plugin reads from its environment.
type config struct {
	socket     string
	fifoDir    string // where Docker's FIFOs are; only tests change it
	spoolDir   string
	level      slog.Level
	spoolLimit int64 // bytes
	policy     segment.Policy
	backoffMax time.Duration
	// journalLimit (JOURNAL_LIMIT) bounds each stream's journal; -1
	// (JOURNAL_LIMIT=0) turns journals off.
	journalLimit int64
	// allowedEndpoints (ALLOWED_ENDPOINTS) restricts the endpoint log-opt;
	// the zero value, the default, allows any endpoint.
	allowedEndpoints logopt.EndpointPolicy
	// readLogs (READ_LOGS) makes the plugin serve docker logs from S3 and
	// the spool; off by default.
	readLogs bool
	// metricsAddr (METRICS_ADDR) is the TCP address, host:port, of
	// /metrics and /healthz; empty, the default, serves neither. The
	// plugin uses the host's network, so the address decides who can
	// reach them.
	metricsAddr string
	// pprof (PPROF) also serves net/http/pprof on metricsAddr; off by
	// default, and only with metricsAddr.
	pprof bool
}

// loadConfig reads the plugin settings; getenv is os.Getenv in production and
// fsSize the size of the filesystem holding a folder.
func loadConfig(getenv func(string) string, fsSize func(string) (int64, error)) (config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := config{
		socket:   get("S3LOGS_SOCKET", "/run/docker/plugins/s3logs.sock"),
		fifoDir:  get("S3LOGS_FIFO_DIR", driver.DefaultFIFODir),
		spoolDir: get("SPOOL_DIR", "/var/lib/s3logs"),
	}
	if err := c.level.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", getenv("LOG_LEVEL"))
	}
	p, err := segment.ParsePolicy(get("SPOOL_POLICY", string(segment.PolicyDropOldest)))
	if err != nil {
		return c, fmt.Errorf("SPOOL_POLICY=%q: want drop-oldest or block", getenv("SPOOL_POLICY"))
	}
	c.policy = p
	limit := get("SPOOL_LIMIT", defaultSpoolLimit)
	if pct, ok := strings.CutSuffix(limit, "%"); ok {
		n, err := strconv.ParseFloat(pct, 64)
		if err != nil || n <= 0 || n > 100 {
			return c, fmt.Errorf("SPOOL_LIMIT=%q: want a share of the spool's filesystem from 1%% to 100%%, or a size such as 512m or 10g", limit)
		}
		total, err := fsSize(c.spoolDir)
		if err != nil {
			return c, fmt.Errorf("SPOOL_LIMIT=%q: size of the spool's filesystem: %w", limit, err)
		}
		c.spoolLimit = int64(float64(total) * n / 100)
	} else {
		n, err := logopt.ParseSize(limit)
		if err != nil || n < 1<<20 {
			return c, fmt.Errorf("SPOOL_LIMIT=%q: want a size of at least 1m such as 512m or 10g, or a share of the spool's filesystem such as 25%%", limit)
		}
		c.spoolLimit = n
	}
	jl := get("JOURNAL_LIMIT", defaultJournalLimit)
	switch n, err := logopt.ParseSize(jl); {
	case jl == "0":
		c.journalLimit = -1
	case err != nil || n < 1<<20:
		return c, fmt.Errorf("JOURNAL_LIMIT=%q: want a size of at least 1m such as 256m or 2g, or 0 to read FIFOs without journals", jl)
	default:
		c.journalLimit = n
	}
	c.backoffMax = defaultBackoffMax
	if v := get("UPLOAD_BACKOFF_MAX", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return c, fmt.Errorf("UPLOAD_BACKOFF_MAX=%q: want a Go duration of at least 1s such as 30s or 5m", v)
		}
		c.backoffMax = d
	}
	// The error names the setting, every bad entry and the accepted form.
	pol, err := logopt.ParseEndpointPolicy(getenv(logopt.SettingAllowedEndpoints))
	if err != nil {
		return c, err
	}
	c.allowedEndpoints = pol
	if v := get("READ_LOGS", "false"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("READ_LOGS=%q: want true or false", v)
		}
		c.readLogs = b
	}
	if v := get("METRICS_ADDR", ""); v != "" {
		host, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || strings.ContainsAny(host, "/ ") {
			return c, fmt.Errorf("METRICS_ADDR=%q: want host:port such as 127.0.0.1:9465 (loopback only), or empty for no metrics", v)
		}
		c.metricsAddr = v
	}
	if v := get("PPROF", "false"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("PPROF=%q: want true or false", v)
		}
		if b && c.metricsAddr == "" {
			return c, fmt.Errorf("PPROF=true needs METRICS_ADDR: profiles are served on the metrics address")
		}
		c.pprof = b
	}
	return c, nil
}

// filesystemSize returns the total size of the filesystem holding dir.
func filesystemSize(dir string) (int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks) * int64(st.Bsize), nil
}
