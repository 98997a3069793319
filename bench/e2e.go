package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// driverConfig is one logging configuration under test.
type driverConfig struct {
	Name   string // in the report
	Driver string // --log-driver
	Proc   string // process name of the plugin, "" for built-in drivers
	S3     bool   // s3logs: needs endpoint and bucket, check S3
	S3Down bool   // with S3: MinIO is stopped during the run, records are not awaited
}

// genBuffer is the generator's write size at full speed, as a C program's
// stdio would write to a pipe.
const genBuffer = 32 << 10

// benchWorkload is one container workload, written at full speed.
type benchWorkload struct {
	Name       string
	Kind       loggen.Mode // loggen.ModeSeq ("short" in the report) or loggen.ModeJSON
	Lines      int         // per container
	Containers int
}

// args returns the generator's arguments for one container.
func (w benchWorkload) args() []string {
	return loggen.Spec{Mode: w.Kind, Lines: w.Lines, Buffer: genBuffer}.Args()
}

// kindLabel names a workload's line shape in the report.
func kindLabel(m loggen.Mode) string {
	if m == loggen.ModeSeq {
		return "short"
	}
	return string(m)
}

// cacheMode is Docker's dual-logging cache setting of a run.
type cacheMode string

const (
	cacheOff cacheMode = "disabled" // --log-opt cache-disabled=true
	cacheOn  cacheMode = "default"  // Docker's default: the cache is on
	cacheNA  cacheMode = "n/a"      // built-in drivers do not use the cache
)

// runResult is one measured run.
type runResult struct {
	Wall       float64 // seconds from the first docker run -d to the last docker wait
	PluginCPU  float64 // plugin CPU-seconds (utime+stime), -1 without a plugin
	DockerdCPU float64 // dockerd CPU-seconds over the same span
	PeakRSS    int64   // plugin VmHWM after a reset at the start, 0 without a plugin
	ToS3       float64 // seconds from the end of docker wait until every record was in S3, -1 unless awaited
	S3         objectStats
	Names      []string // the containers, named as their key prefixes
}

// pairResult is a configuration's run and the null plugin's run after it.
type pairResult struct{ A, Null runResult }

// groupResult is every pair of one configuration on one workload.
type groupResult struct {
	Workload benchWorkload
	Config   driverConfig
	Cache    cacheMode
	Pairs    []pairResult
}

// runOne runs one workload through one configuration and measures it.
func (h *harness) runOne(cfg driverConfig, wl benchWorkload, cache cacheMode) (runResult, error) {
	r := runResult{PluginCPU: -1, ToS3: -1}
	names := make([]string, wl.Containers)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-%d", h.runID, h.seq.Add(1))
	}
	r.Names = names
	defer func() {
		for i := 0; i < len(names); i += 50 {
			docker(append([]string{"rm", "-f"}, names[i:min(i+50, len(names))]...)...)
		}
	}()
	var opts []string
	if cfg.S3 {
		opts = append(opts, "endpoint="+h.minio.Endpoint, "bucket="+h.store.bucket)
	}
	if cache == cacheOff {
		opts = append(opts, "cache-disabled=true")
	}
	if err := settle(15 * time.Second); err != nil {
		return r, err
	}
	pid := 0
	var cpu0 float64
	var err error
	if cfg.Proc != "" {
		if pid, err = pluginPID(cfg.Driver, cfg.Proc); err != nil {
			return r, err
		}
		if err := resetPeak(pid); err != nil {
			return r, err
		}
		if cpu0, err = cpuSeconds(pid); err != nil {
			return r, err
		}
	}
	dpid, err := daemonPID()
	if err != nil {
		return r, err
	}
	d0, err := cpuSeconds(dpid)
	if err != nil {
		return r, err
	}

	start := time.Now()
	err = parallel(len(names), len(names), func(i int) error {
		args := []string{"run", "-d", "--name", names[i], "--label", labelKey + "=" + h.runID,
			"--network", "none", "--log-driver", cfg.Driver}
		for _, o := range opts {
			args = append(args, "--log-opt", o)
		}
		args = append(append(args, h.image), wl.args()...)
		_, err := docker(args...)
		return err
	})
	if err != nil {
		return r, err
	}
	err = parallel(len(names), len(names), func(i int) error {
		code, err := docker("wait", names[i])
		if err == nil && code != "0" {
			err = fmt.Errorf("container %s exited with %s", names[i], code)
		}
		return err
	})
	r.Wall = time.Since(start).Seconds()
	if err != nil {
		return r, err
	}

	if cfg.S3 && !cfg.S3Down {
		exited := time.Now()
		var mu sync.Mutex
		err := parallel(len(names), 4, func(i int) error {
			st, err := h.store.waitRecords(names[i]+"/", int64(wl.Lines), 3*time.Minute)
			if err != nil {
				return err
			}
			if st.Records != int64(wl.Lines) {
				return fmt.Errorf("%s: %d records in S3, want %d", names[i], st.Records, wl.Lines)
			}
			mu.Lock()
			r.S3.Objects += st.Objects
			r.S3.Records += st.Records
			r.S3.RawBytes += st.RawBytes
			r.S3.Compressed += st.Compressed
			r.S3.Keys = append(r.S3.Keys, st.Keys...)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return r, err
		}
		r.ToS3 = time.Since(exited).Seconds()
	}
	// Removing the containers ends every logging session; let the plugin
	// read to EOF before its CPU is read.
	for i := 0; i < len(names); i += 50 {
		if _, err := docker(append([]string{"rm", "-f"}, names[i:min(i+50, len(names))]...)...); err != nil {
			return r, err
		}
	}
	if pid != 0 {
		if err := waitQuiet(pid, 300*time.Millisecond, 20*time.Second); err != nil {
			return r, err
		}
		cpu1, err := cpuSeconds(pid)
		if err != nil {
			return r, err
		}
		r.PluginCPU = cpu1 - cpu0
		st, err := readStatus(pid)
		if err != nil {
			return r, err
		}
		r.PeakRSS = st.HWM
	}
	d1, err := cpuSeconds(dpid)
	if err != nil {
		return r, err
	}
	r.DockerdCPU = d1 - d0
	if len(r.S3.Keys) > 0 {
		if err := h.store.deleteKeys(r.S3.Keys); err != nil {
			h.logf("warning: deleting objects: %v", err)
		}
		r.S3.Keys = nil
	}
	return r, nil
}

// waitQuiet waits until pid used less than 2% of a core over an interval
// (it finished its work), at most timeout.
func waitQuiet(pid int, interval, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	prev, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		time.Sleep(interval)
		cur, err := cpuSeconds(pid)
		if err != nil {
			return err
		}
		if cur-prev <= 0.02*interval.Seconds()+1.0/clockTicks {
			return nil
		}
		prev = cur
	}
	return nil
}

// runGroup alternates cfg with the null plugin (A B A B ...), runs pairs.
func (h *harness) runGroup(cfg driverConfig, wl benchWorkload, cache cacheMode, runs int) (groupResult, error) {
	g := groupResult{Workload: wl, Config: cfg, Cache: cache}
	nullCache := cache
	if cache == cacheNA {
		nullCache = cacheOff
	}
	for i := 0; i < runs; i++ {
		a, err := h.runOne(cfg, wl, cache)
		if err != nil {
			return g, fmt.Errorf("%s %s cache=%s run %d: %w", wl.Name, cfg.Name, cache, i+1, err)
		}
		b, err := h.runOne(h.null, wl, nullCache)
		if err != nil {
			return g, fmt.Errorf("%s null cache=%s run %d: %w", wl.Name, nullCache, i+1, err)
		}
		h.logf("  %-9s %-8s %-24s run %d/%d: %6.2f s (null %6.2f s) ratio %.3f  plugin CPU %s  peak RSS %s",
			wl.Name, cache, cfg.Name, i+1, runs, a.Wall, b.Wall, a.Wall/b.Wall, fmtCPU(a.PluginCPU), fmtMiB(a.PeakRSS))
		g.Pairs = append(g.Pairs, pairResult{A: a, Null: b})
	}
	return g, nil
}

// e2e runs every workload and configuration.
func (h *harness) e2e(workloads []benchWorkload, configs []driverConfig, runs int) ([]groupResult, error) {
	var out []groupResult
	for _, wl := range workloads {
		for _, cfg := range configs {
			caches := []cacheMode{cacheOff, cacheOn}
			if cfg.Proc == "" {
				caches = []cacheMode{cacheNA}
			}
			for _, c := range caches {
				g, err := h.runGroup(cfg, wl, c, runs)
				if err != nil {
					return out, err
				}
				out = append(out, g)
			}
		}
	}
	return out, nil
}

func fmtCPU(s float64) string {
	if s < 0 {
		return "-"
	}
	return strconv.FormatFloat(s, 'f', 2, 64) + " s"
}

func fmtMiB(b int64) string {
	if b <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

// shortName trims the tag of a plugin reference for the report.
func shortName(ref string) string {
	name, _, _ := strings.Cut(ref, ":")
	return name
}
