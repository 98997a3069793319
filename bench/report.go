package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// Budgets of issues 3, 4 and 5.
const (
	budgetToS3         = 5.0       // seconds from a container's exit until its last lines are in S3 (issue 3)
	budgetOutage       = 1.10      // wall time with S3 down / with S3 up (issue 4)
	budgetRatio        = 1.10      // e2e s3logs/null, 2M short lines
	budgetCPUPerM      = 0.5       // plugin CPU-seconds per 1M short lines
	budgetIdleTotal    = 128 << 20 // RSS with 300 idle containers
	budgetIdleStream   = 256 << 10 // per idle stream
	budgetActiveStream = 4 << 20   // per active stream
	budgetRecordsPerS  = 2_000_000 // pipeline, short records, one core
	budgetMBPerS       = 300       // pipeline, ~1 KiB records, one core
)

// report is everything one session measured.
type report struct {
	Date      time.Time
	Quick     bool
	Runs      int
	Machine   machine
	Engine    string
	GoVersion string
	Elapsed   time.Duration

	Pipeline []pipelineRow
	Groups   []groupResult
	Scale    *scaleResult
	Objects  *objectsResult
	Outage   *outageResult

	budgets []budgetRow
}

// pipelineRow is one BenchmarkPipeline result (medians over -count).
type pipelineRow struct {
	Name    string
	Metrics map[string]float64
}

type budgetRow struct {
	Name, Limit, Measured string
	Met                   bool
}

// parseGoBench reads BenchmarkPipeline rows from go test -bench output.
func parseGoBench(path string) ([]pipelineRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	samples := map[string]map[string][]float64{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "BenchmarkPipeline/") {
			continue
		}
		name := strings.TrimPrefix(fields[0], "BenchmarkPipeline/")
		if i := strings.LastIndexByte(name, '-'); i > 0 && !strings.Contains(name[i:], "=") {
			name = name[:i] // -cpu suffix
		}
		if samples[name] == nil {
			samples[name] = map[string][]float64{}
			order = append(order, name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			samples[name][fields[i+1]] = append(samples[name][fields[i+1]], v)
		}
	}
	var rows []pipelineRow
	for _, name := range order {
		r := pipelineRow{Name: name, Metrics: map[string]float64{}}
		for unit, vs := range samples[name] {
			r.Metrics[unit] = median(vs)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// groupStats are the medians of one group.
type groupStats struct {
	Wall, NullWall, Ratio, RatioMin, RatioMax float64
	CPU, NullCPU, DockerdCPU, NullDockerdCPU  float64
	PeakRSS                                   int64
	Objects                                   float64
	Compressed, Raw                           float64
}

func (g groupResult) stats() groupStats {
	var s groupStats
	var wall, null, ratio, cpu, ncpu, dcpu, ndcpu, objs, comp, raw []float64
	for _, p := range g.Pairs {
		wall = append(wall, p.A.Wall)
		null = append(null, p.Null.Wall)
		ratio = append(ratio, p.A.Wall/p.Null.Wall)
		cpu = append(cpu, p.A.PluginCPU)
		ncpu = append(ncpu, p.Null.PluginCPU)
		dcpu = append(dcpu, p.A.DockerdCPU)
		ndcpu = append(ndcpu, p.Null.DockerdCPU)
		s.PeakRSS = max(s.PeakRSS, p.A.PeakRSS)
		objs = append(objs, float64(p.A.S3.Objects))
		comp = append(comp, float64(p.A.S3.Compressed))
		raw = append(raw, float64(p.A.S3.RawBytes))
	}
	s.Wall, s.NullWall, s.Ratio = median(wall), median(null), median(ratio)
	s.RatioMin, s.RatioMax = slices.Min(ratio), slices.Max(ratio)
	s.CPU, s.NullCPU, s.DockerdCPU, s.NullDockerdCPU = median(cpu), median(ncpu), median(dcpu), median(ndcpu)
	s.Objects, s.Compressed, s.Raw = median(objs), median(comp), median(raw)
	return s
}

func (r *report) evaluate() {
	r.budgets = nil
	add := func(name, limit, measured string, met bool) {
		r.budgets = append(r.budgets, budgetRow{name, limit, measured, met})
	}
	for _, p := range r.Pipeline {
		if !strings.HasPrefix(p.Name, "level=default/") {
			continue
		}
		switch {
		case strings.Contains(p.Name, "records=short"):
			v := p.Metrics["records/s"]
			add("pipeline, short records, 1 core", "≥ 2,000,000 records/s", fmt.Sprintf("%.0f records/s", v), v >= budgetRecordsPerS)
		case strings.Contains(p.Name, "records=json"):
			v := p.Metrics["MB/s"]
			add("pipeline, ~1 KiB records, 1 core", "≥ 300 MB/s", fmt.Sprintf("%.0f MB/s FIFO bytes (%.0f MB/s of records)", v, p.Metrics["rec-MB/s"]), v >= budgetMBPerS)
		}
	}
	var cpuPerM float64
	var cpuSeen bool
	for _, g := range r.Groups {
		if !g.Config.S3 || g.Workload.Kind != loggen.ModeSeq || g.Workload.Containers != 1 {
			continue
		}
		s := g.stats()
		add(fmt.Sprintf("e2e %s lines, s3logs / null, cache %s", fmtCount(g.Workload.Lines), g.Cache),
			"≤ 1.10 (median of pairs)", fmt.Sprintf("%.3f (%.3f to %.3f)", s.Ratio, s.RatioMin, s.RatioMax), s.Ratio <= budgetRatio)
		per := s.CPU / (float64(g.Workload.Lines) / 1e6)
		cpuPerM = max(cpuPerM, per)
		cpuSeen = true
	}
	if cpuSeen {
		add("plugin CPU per 1M short lines (worse cache mode)", "≤ 0.5 CPU-s", fmt.Sprintf("%.3f CPU-s", cpuPerM), cpuPerM <= budgetCPUPerM)
	}
	if toS3 := r.toS3(); len(toS3) > 0 {
		worst := slices.Max(toS3)
		add("last lines in S3 after the container exits (one-container s3logs runs)", "≤ 5 s, every run",
			fmt.Sprintf("max %.2f s, median %.2f s over %d runs", worst, median(toS3), len(toS3)), worst <= budgetToS3)
	}
	if o := r.Outage; o != nil && len(o.Pairs) > 0 {
		rs := o.ratios()
		m := median(rs)
		add(fmt.Sprintf("S3 outage: %s lines with S3 down / up", fmtCount(o.Workload.Lines)), "≤ 1.10 (median of pairs)",
			fmt.Sprintf("%.3f (%.3f to %.3f)", m, slices.Min(rs), slices.Max(rs)), m <= budgetOutage)
	}
	if sc := r.Scale; sc != nil {
		samples := []struct {
			when string
			ps   procSample
		}{{"15 s after their last line", sc.IdleSample}}
		if sc.Settle > 0 {
			samples = append(samples, struct {
				when string
				ps   procSample
			}{fmt.Sprintf("%v later", sc.Settle), sc.IdleSettled})
		}
		for _, x := range samples {
			add(fmt.Sprintf("RSS with %d idle containers, %s", sc.Idle, x.when), "< 128 MiB", fmtMiB(x.ps.RSS), x.ps.RSS < budgetIdleTotal)
			per := (x.ps.RSS - sc.Base.RSS) / int64(max(1, sc.Idle))
			add("memory per idle stream, "+x.when, "≤ 256 KiB", fmt.Sprintf("%.1f KiB", float64(per)/1024), per <= budgetIdleStream)
		}
		before := sc.IdleSample.RSS // RSS right before the burst
		if sc.Settle > 0 {
			before = sc.IdleSettled.RSS
		}
		act := (sc.BusyPeak - before) / int64(max(1, sc.Busy))
		add(fmt.Sprintf("memory per active stream (%d at full speed)", sc.Busy), "≤ 4 MiB", fmtMiB(max(act, 1)), act <= budgetActiveStream)
		growth := sc.ShortAfter.RSS - sc.ShortBefore.RSS
		ok := growth <= max(sc.ShortBefore.RSS/20, 4<<20) && sc.ShortAfter.FDs <= sc.ShortBefore.FDs+2
		add(fmt.Sprintf("no growth after %d short-lived containers", sc.ShortLived), "RSS +< max(5%, 4 MiB), fds unchanged",
			fmt.Sprintf("RSS %s → %s, fds %d → %d", fmtMiB(sc.ShortBefore.RSS), fmtMiB(sc.ShortAfter.RSS), sc.ShortBefore.FDs, sc.ShortAfter.FDs), ok)
	}
	if o := r.Objects; o != nil {
		var full []int64
		for i, sz := range o.Stats.Sizes {
			if i < len(o.Stats.Sizes)-1 { // the last one is sealed by the stop
				full = append(full, sz)
			}
		}
		if len(full) > 0 {
			lo, hi := slices.Min(full), slices.Max(full)
			ok := float64(lo) >= 0.9*float64(o.SegmentSize) && float64(hi) <= 1.1*float64(o.SegmentSize)
			add(fmt.Sprintf("objects of a ~%.1f MB/s container near segment-size (%s)", o.RateBytes/1e6, fmtMiB(o.SegmentSize)),
				"within ±10%", fmt.Sprintf("%d objects, %s to %s (+ last %s)", o.Stats.Objects, fmtMiB(lo), fmtMiB(hi), fmtMiB(o.Stats.Sizes[len(o.Stats.Sizes)-1])), ok)
		}
	}
}

// toS3 returns the seconds from exit to S3 of every one-container run whose
// records were awaited.
func (r *report) toS3() []float64 {
	var out []float64
	for _, g := range r.Groups {
		if g.Workload.Containers != 1 {
			continue
		}
		for _, p := range g.Pairs {
			if p.A.ToS3 >= 0 {
				out = append(out, p.A.ToS3)
			}
		}
	}
	if o := r.Outage; o != nil {
		for _, p := range o.Pairs {
			out = append(out, p.Up.ToS3)
		}
	}
	return out
}

func (r *report) failed() bool {
	r.evaluate()
	for _, b := range r.budgets {
		if !b.Met {
			return true
		}
	}
	return false
}

func fmtCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func (r *report) markdown() string {
	r.evaluate()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Benchmark results\n\n")
	mode := ""
	if r.Quick {
		mode = " **QUICK smoke run: workloads and container counts divided by 100; not a measurement.**"
	}
	p("%s, Docker Engine %s, %d cores (%s), %.0f GiB, Linux %s, %s; %d pairs per configuration; the end-to-end harness took %s.%s\n\n",
		r.Date.Format("2006-01-02"), r.Engine, r.Machine.Cores, r.Machine.CPU, float64(r.Machine.Memory)/(1<<30), r.Machine.Kernel,
		r.GoVersion, r.Runs, r.Elapsed.Round(time.Second), mode)

	if len(r.Pipeline) > 0 {
		p("### Stream pipeline in isolation (Go benchmark, one core)\n\n")
		p("`BenchmarkPipeline` (driver/pipeline_bench_test.go): a recorded FIFO byte stream (Docker's framed LogEntry protobufs) through the stream's reader loop, json-file encoding and the segment writer into a sealed segment on disk. MB/s counts FIFO bytes, rec-MB/s the json-file records written.\n\n")
		p("| level | records | records/s | MB/s | rec-MB/s | allocs/record | ratio |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, row := range r.Pipeline {
			m := row.Metrics
			level, rest, _ := strings.Cut(row.Name, "/")
			p("| %s | %s | %.0f | %.0f | %.0f | %.5f | %.2f |\n", strings.TrimPrefix(level, "level="),
				strings.ReplaceAll(strings.ReplaceAll(rest, "records=", ""), "/lines=", " × "), m["records/s"], m["MB/s"], m["rec-MB/s"], m["allocs/record"], m["ratio"])
		}
		p("\nallocs/record includes each stream's setup and sealing; `TestPipelineSteadyStateAllocs` asserts 0 allocations per record in steady state.\n\n")
	}

	if len(r.Groups) > 0 {
		p("### End to end on Docker (medians of %d alternating pairs)\n\n", r.Runs)
		p("Wall time from `docker run -d` to `docker wait`; each run of a configuration is followed by a run of the null plugin (reads each FIFO with a 1 MiB buffer and discards); ratio is the median of the per-pair ratios (range in brackets). CPU is the plugin's utime+stime until its uploads finished; RSS is its VmHWM during the run.\n\n")
		p("| workload | driver | cache | wall s | null wall s | ratio | plugin CPU-s | CPU-s / 1M lines | dockerd CPU-s (null) | plugin peak RSS | S3 objects | S3 bytes | raw / compressed |\n")
		p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, g := range r.Groups {
			s := g.stats()
			lines := g.Workload.Lines * g.Workload.Containers
			wl := fmt.Sprintf("%s %s lines", fmtCount(g.Workload.Lines), kindLabel(g.Workload.Kind))
			if g.Workload.Containers > 1 {
				wl = fmt.Sprintf("%d containers × %s", g.Workload.Containers, wl)
			}
			cpu, per, rss := "-", "-", "-"
			if g.Config.Proc != "" {
				cpu = fmt.Sprintf("%.2f (%.2f)", s.CPU, s.NullCPU)
				per = fmt.Sprintf("%.3f", s.CPU/(float64(lines)/1e6))
				rss = fmtMiB(s.PeakRSS)
			}
			objs, bytes, ratio := "-", "-", "-"
			if g.Config.S3 {
				objs = fmt.Sprintf("%.0f", s.Objects)
				bytes = fmt.Sprintf("%.1f MB", s.Compressed/1e6)
				ratio = fmt.Sprintf("%.1f (%.0f MB raw)", s.Raw/s.Compressed, s.Raw/1e6)
			}
			p("| %s | %s | %s | %.2f | %.2f | %.3f (%.2f–%.2f) | %s | %s | %.2f (%.2f) | %s | %s | %s | %s |\n",
				wl, g.Config.Name, g.Cache, s.Wall, s.NullWall, s.Ratio, s.RatioMin, s.RatioMax, cpu, per,
				s.DockerdCPU, s.NullDockerdCPU, rss, objs, bytes, ratio)
		}
		p("\nPlugin CPU in brackets: the null plugin's in the paired runs. json-file and local do not use Docker's dual-logging cache; they are paired with the null plugin with the cache disabled.\n\n")
	}

	if sc := r.Scale; sc != nil {
		p("### Scale (s3logs plugin process, restarted before this part)\n\n| situation | RSS | open fds | threads |\n|---|---:|---:|---:|\n")
		p("| no containers | %s | %d | %d |\n", fmtMiB(sc.Base.RSS), sc.Base.FDs, sc.Base.Threads)
		p("| %d containers, one line a second for 10 s, then idle | %s | %d | %d |\n", sc.Idle, fmtMiB(sc.IdleSample.RSS), sc.IdleSample.FDs, sc.IdleSample.Threads)
		p("| (peak while they logged one line a second) | %s | | |\n", fmtMiB(sc.LoggingPeak))
		if sc.Settle > 0 {
			p("| the same, %v later | %s | %d | %d |\n", sc.Settle, fmtMiB(sc.IdleSettled.RSS), sc.IdleSettled.FDs, sc.IdleSettled.Threads)
		}
		p("| %d of them writing %s short lines each at full speed (peak) | %s | | |\n", sc.Busy, fmtCount(sc.BusyLines), fmtMiB(sc.BusyPeak))
		p("| all %d removed | %s | %d | %d |\n", sc.Idle, fmtMiB(sc.AfterIdle.RSS), sc.AfterIdle.FDs, sc.AfterIdle.Threads)
		p("| before %d short-lived containers (after %d to warm up) | %s | %d | %d |\n", sc.ShortLived, sc.ShortWarm, fmtMiB(sc.ShortBefore.RSS), sc.ShortBefore.FDs, sc.ShortBefore.Threads)
		p("| after them | %s | %d | %d |\n", fmtMiB(sc.ShortAfter.RSS), sc.ShortAfter.FDs, sc.ShortAfter.Threads)
		p("\nStarting the %d idle containers took %.0f s; the burst (%d × %s lines) took %.1f s and %.1f plugin CPU-s; the %d short-lived containers (`docker run --rm`, 10 lines, 4 at a time) took %.0f s.\n\n",
			sc.Idle, sc.StartSecs, sc.Busy, fmtCount(sc.BusyLines), sc.BusySecs, sc.BusyCPU, sc.ShortLived, sc.ShortSecs)
	}
	if o := r.Outage; o != nil && len(o.Pairs) > 0 {
		p("### S3 outage (pairs measured in this session)\n\n")
		p("One container writing %s %s lines at full speed through s3logs (cache disabled), alternately with S3 up and with MinIO stopped; wall time from `docker run -d` to `docker wait`. After each run with S3 down MinIO is started again and the harness waits until every record is in S3 (catch-up, the plugin's upload backoff included) before the next pair.\n\n",
			fmtCount(o.Workload.Lines), kindLabel(o.Workload.Kind))
		p("| pair | S3 up s | S3 down s | down / up | in S3 after exit (up) s | catch-up after restart s | plugin CPU-s up / down |\n|---:|---:|---:|---:|---:|---:|---:|\n")
		for i, pr := range o.Pairs {
			p("| %d | %.2f | %.2f | %.3f | %.2f | %.1f | %s / %s |\n", i+1, pr.Up.Wall, pr.Down.Wall, pr.Down.Wall/pr.Up.Wall,
				pr.Up.ToS3, pr.CatchUp, fmtCPU(pr.Up.PluginCPU), fmtCPU(pr.Down.PluginCPU))
		}
		rs := o.ratios()
		p("\nMedian slowdown with S3 down: %+.1f%% (pairs from %+.1f%% to %+.1f%%).\n\n", 100*(median(rs)-1), 100*(slices.Min(rs)-1), 100*(slices.Max(rs)-1))
	}
	if o := r.Objects; o != nil {
		p("### Objects of a steadily logging container\n\n")
		p("One container writing 1,000 JSON lines of ~1 KiB a second (%.2f MB/s of records) for %.0f s with `segment-size=%s` (scaled down from 64m so that the check takes a minute): %d objects, sizes", o.RateBytes/1e6, o.Seconds, fmtMiB(o.SegmentSize), o.Stats.Objects)
		for _, s := range o.Stats.Sizes {
			p(" %.2f", float64(s)/(1<<20))
		}
		p(" MiB (the last one sealed when the container stopped).\n\n")
	}
	if len(r.budgets) > 0 {
		p("### Budgets (issues 3, 4 and 5)\n\n| budget | limit | measured | met |\n|---|---|---|---|\n")
		for _, bu := range r.budgets {
			met := "yes"
			if !bu.Met {
				met = "**no**"
			}
			p("| %s | %s | %s | %s |\n", bu.Name, bu.Limit, bu.Measured, met)
		}
		p("\n")
	}
	return b.String()
}
