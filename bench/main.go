package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
	"github.com/s3logs/s3logs/internal/miniotest"
)

// harness is the state of one benchmark session.
type harness struct {
	runID  string
	image  string
	minio  *miniotest.Server
	store  store // the bucket on minio
	s3logs driverConfig
	null   driverConfig
	seq    atomic.Int64
	start  time.Time
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	quick, _ := strconv.ParseBool(os.Getenv("QUICK"))
	div := 1
	defRuns := 5
	if quick {
		div, defRuns = 100, 1
	}
	var (
		plugin     = flag.String("plugin", envOr("PLUGIN", "s3logs:latest"), "installed s3logs plugin")
		nullPlugin = flag.String("null", envOr("NULL_PLUGIN", "s3logs-null:latest"), "installed null plugin (make nullplugin)")
		image      = flag.String("image", envOr("BENCH_IMAGE", "s3logs-benchgen:latest"), "workload image (make bench-image)")
		minioBin   = flag.String("minio", envOr("MINIO", "bin/minio"), "MinIO server binary")
		out        = flag.String("out", "bench/results.md", "Markdown report file (empty: none)")
		goBench    = flag.String("gobench", "", "go test -bench output whose BenchmarkPipeline rows go into the report")
		parts      = flag.String("parts", "e2e,outage,scale,objects", "comma-separated parts: e2e, outage, scale, objects")
		configs    = flag.String("configs", "s3logs,json-file,local", "configurations compared with the null plugin")
		wls        = flag.String("workloads", "short,json,multi", "workloads: short (2M seq lines), json (200k ~1 KiB), multi (20 x 100k)")
		runs       = flag.Int("runs", envInt("RUNS", defRuns), "pairs per configuration (env RUNS)")
		idle       = flag.Int("idle", 300/max(1, div/10), "scale: idle containers")
		busy       = flag.Int("busy", 50/max(1, div/10), "scale: of which logging at full speed")
		burst      = flag.Int("burst", 100000/div, "scale: lines per busy container")
		shortLived = flag.Int("short-lived", 1000/max(1, div/5), "scale: short-lived containers")
		settle     = flag.Duration("idle-settle", 150*time.Second/time.Duration(div), "scale: extra idle time before the second RSS sample")
		strict     = flag.Bool("strict", false, "exit with status 1 when a budget is not met")
		objSecs    = flag.Duration("objects-for", 60*time.Second/time.Duration(max(1, div/25)), "objects: how long the ~1 MB/s container logs")
	)
	flag.Parse()

	h := &harness{
		runID:  strconv.FormatInt(time.Now().Unix()%1e6, 36),
		image:  *image,
		s3logs: driverConfig{Name: "s3logs", Driver: *plugin, Proc: "s3logs", S3: true},
		null:   driverConfig{Name: "null plugin", Driver: *nullPlugin, Proc: "nullplugin"},
		start:  time.Now(),
	}
	all := map[string]driverConfig{
		"s3logs":    h.s3logs,
		"json-file": {Name: "json-file", Driver: "json-file"},
		"local":     {Name: "local", Driver: "local"},
	}
	var cfgs []driverConfig
	for _, c := range splitList(*configs) {
		cfg, ok := all[c]
		if !ok {
			return fmt.Errorf("unknown configuration %q", c)
		}
		cfgs = append(cfgs, cfg)
	}
	allWl := map[string]benchWorkload{
		"short": {Name: "short", Kind: loggen.ModeSeq, Lines: 2_000_000 / div, Containers: 1},
		"json":  {Name: "json", Kind: loggen.ModeJSON, Lines: 200_000 / div, Containers: 1},
		"multi": {Name: "20x short", Kind: loggen.ModeSeq, Lines: 100_000 / div, Containers: 20},
	}
	var workloads []benchWorkload
	for _, w := range splitList(*wls) {
		wl, ok := allWl[w]
		if !ok {
			return fmt.Errorf("unknown workload %q", w)
		}
		workloads = append(workloads, wl)
	}
	want := map[string]bool{}
	for _, p := range splitList(*parts) {
		want[p] = true
	}

	rep := &report{Date: time.Now().UTC(), Quick: quick, Runs: *runs, Machine: describeMachine(), GoVersion: runtime.Version()}
	var err error
	if rep.Engine, err = docker("version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Errorf("no Docker Engine: %w", err)
	}
	for _, p := range []string{*plugin, *nullPlugin} {
		st, err := inspectPlugin(p)
		if err != nil {
			return fmt.Errorf("plugin %s not installed (make plugin / make nullplugin): %w", p, err)
		}
		if !st.Enabled && p == *nullPlugin {
			if _, err := docker("plugin", "enable", p); err != nil {
				return err
			}
		}
	}
	if _, err := docker("image", "inspect", *image); err != nil {
		return fmt.Errorf("image %s missing (make bench-image): %w", *image, err)
	}
	if *goBench != "" {
		rep.Pipeline, err = parseGoBench(*goBench)
		if err != nil {
			return err
		}
	}
	if err := removeLabeled(); err != nil {
		return err
	}

	h.logf("starting MinIO (%s)", *minioBin)
	h.minio, err = miniotest.Launch(*minioBin)
	if err != nil {
		return err
	}
	defer h.minio.Close()
	h.store = store{client: h.minio.NewClient(nil), bucket: "s3logs-bench"}
	if err := h.store.createBucket(); err != nil {
		return err
	}

	needS3logs := want["scale"] || want["objects"] || want["outage"]
	for _, c := range cfgs {
		needS3logs = needS3logs || c.S3
	}
	if needS3logs {
		cleanup, err := h.configureS3logs(*plugin)
		if err != nil {
			return err
		}
		defer cleanup()
	} else {
		defer func() {
			if err := removeLabeled(); err != nil {
				h.logf("cleanup: %v", err)
			}
		}()
	}

	if want["e2e"] {
		h.logf("warm-up: one small run per configuration")
		for _, cfg := range append(cfgs, h.null) {
			if _, err := h.runOne(cfg, benchWorkload{Name: "warm-up", Kind: loggen.ModeSeq, Lines: 10000, Containers: 1}, cacheOff); err != nil {
				return fmt.Errorf("warm-up %s: %w", cfg.Name, err)
			}
		}
		h.logf("e2e: %d workloads x %d configurations, %d pairs each", len(workloads), len(cfgs), *runs)
		rep.Groups, err = h.e2e(workloads, cfgs, *runs)
		if err != nil {
			return err
		}
	}
	if want["outage"] {
		wl := allWl["short"]
		h.logf("outage: %s through s3logs, S3 up then down, %d pairs", wl.Name, *runs)
		if rep.Outage, err = h.outage(wl, *runs); err != nil {
			return err
		}
	}
	if want["objects"] {
		if rep.Objects, err = h.objects(*objSecs, "1m", 1<<20); err != nil {
			return err
		}
	}
	if want["scale"] {
		if rep.Scale, err = h.scale(*idle, min(*busy, *idle), *shortLived, *burst, *settle); err != nil {
			return err
		}
	}
	rep.Elapsed = time.Since(h.start)
	md := rep.markdown()
	fmt.Print(md)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			return err
		}
		h.logf("wrote %s", *out)
	}
	if rep.failed() && *strict {
		return errors.New("some budgets are not met (see the table)")
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// configureS3logs points the s3logs plugin at MinIO with a fresh temporary
// spool. The returned cleanup removes the harness's containers and restores
// the plugin's earlier settings; it also runs on SIGINT and SIGTERM.
func (h *harness) configureS3logs(plugin string) (func(), error) {
	prev, err := inspectPlugin(plugin)
	if err != nil {
		return nil, err
	}
	restore := prev.Saved("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "spool.source")
	spool, err := os.MkdirTemp("", "s3logs-bench-spool-")
	if err != nil {
		return nil, err
	}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			if err := removeLabeled(); err != nil {
				h.logf("cleanup: %v", err)
			}
			if err := setPlugin(plugin, restore...); err != nil {
				h.logf("cleanup: restoring %s settings: %v", plugin, err)
			}
			if !prev.Enabled {
				docker("plugin", "disable", plugin)
			}
			os.RemoveAll(spool)
		})
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigc
		h.logf("interrupted: cleaning up")
		cleanup()
		h.minio.Close()
		os.Exit(130)
	}()
	h.logf("configuring %s: MinIO credentials, spool %s", plugin, spool)
	if err := setPlugin(plugin, "AWS_ACCESS_KEY_ID="+h.minio.AccessKey, "AWS_SECRET_ACCESS_KEY="+h.minio.SecretKey,
		"AWS_SESSION_TOKEN=", "AWS_REGION="+h.minio.Region, "spool.source="+spool); err != nil {
		cleanup()
		return nil, err
	}
	return cleanup, nil
}
