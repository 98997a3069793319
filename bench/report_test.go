package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3logs/s3logs/internal/loggen"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkPipeline/level=default/records=short/lines=2000000         	       3	 497427174 ns/op	 122.41 MB/s	         0.0000597 allocs/record	  4020689 records/s
BenchmarkPipeline/level=default/records=short/lines=2000000         	       3	 497427174 ns/op	 100.00 MB/s	         0.0000597 allocs/record	  3000000 records/s
BenchmarkPipeline/level=default/records=short/lines=2000000         	       3	 497427174 ns/op	 130.00 MB/s	         0.0000597 allocs/record	  5000000 records/s
BenchmarkPipeline/level=default/records=json/lines=200000-2           	       1	1039103914 ns/op	 201.97 MB/s	       236.4 rec-MB/s
BenchmarkPipelineStages/records=short/stage=1-decode  	      20	  56801152 ns/op	1071.97 MB/s
BenchmarkDecode/line80         	44223324	        26.89 ns/op
`
	path := filepath.Join(t.TempDir(), "bench.txt")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	rows, err := parseGoBench(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(rows), rows)
	}
	if rows[0].Name != "level=default/records=short/lines=2000000" || rows[0].Metrics["records/s"] != 4020689 || rows[0].Metrics["MB/s"] != 122.41 {
		t.Errorf("row 0 = %+v, want the medians", rows[0])
	}
	if rows[1].Name != "level=default/records=json/lines=200000" || rows[1].Metrics["rec-MB/s"] != 236.4 {
		t.Errorf("row 1 = %+v (the -cpu suffix must go)", rows[1])
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if _, err := cpuSeconds(pid); err != nil {
		t.Fatal(err)
	}
	st, err := readStatus(pid)
	if err != nil || st.RSS <= 0 || st.HWM < st.RSS || st.Threads < 1 {
		t.Fatalf("readStatus = %+v, %v", st, err)
	}
	if n, err := openFDs(pid); err != nil || n < 3 {
		t.Fatalf("openFDs = %d, %v", n, err)
	}
	if m := describeMachine(); m.Cores < 1 || m.Memory <= 0 {
		t.Fatalf("describeMachine = %+v", m)
	}
}

func TestMarkdownBudgets(t *testing.T) {
	r := &report{Runs: 1, Pipeline: []pipelineRow{
		{Name: "level=default/records=short/lines=2000000", Metrics: map[string]float64{"records/s": 2_500_000}},
		{Name: "level=default/records=json/lines=200000", Metrics: map[string]float64{"MB/s": 250}},
	}}
	md := r.markdown()
	for _, want := range []string{"| pipeline, short records, 1 core | ≥ 2,000,000 records/s | 2500000 records/s | yes |", "| pipeline, ~1 KiB records, 1 core | ≥ 300 MB/s | 250 MB/s"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !r.failed() {
		t.Error("failed() = false with a budget not met")
	}
}

func TestMarkdownOutageAndToS3(t *testing.T) {
	wl := benchWorkload{Name: "short", Kind: loggen.ModeSeq, Lines: 2_000_000, Containers: 1}
	r := &report{Runs: 2,
		Groups: []groupResult{{Workload: wl, Config: driverConfig{Name: "s3logs", S3: true}, Cache: cacheOff,
			Pairs: []pairResult{{A: runResult{Wall: 4, ToS3: 0.4}, Null: runResult{Wall: 5, ToS3: -1}}}}},
		Outage: &outageResult{Workload: wl, Pairs: []outagePair{
			{Up: runResult{Wall: 4, ToS3: 0.5, PluginCPU: 3}, Down: runResult{Wall: 4.2, ToS3: -1, PluginCPU: 3}, CatchUp: 2},
			{Up: runResult{Wall: 5, ToS3: 6.5, PluginCPU: 3}, Down: runResult{Wall: 4.5, ToS3: -1, PluginCPU: 3}, CatchUp: 3},
		}},
	}
	md := r.markdown()
	for _, want := range []string{
		"| 1 | 4.00 | 4.20 | 1.050 | 0.50 | 2.0 | 3.00 s / 3.00 s |",
		"Median slowdown with S3 down: -2.5% (pairs from -10.0% to +5.0%).",
		"| S3 outage: 2M lines with S3 down / up | ≤ 1.10 (median of pairs) | 0.975 (0.900 to 1.050) | yes |",
		"| last lines in S3 after the container exits (one-container s3logs runs) | ≤ 5 s, every run | max 6.50 s, median 0.50 s over 3 runs | **no** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestDaemonHosts(t *testing.T) {
	// The test binary has no -H flag: the default socket.
	if got := daemonHosts(strconv.Itoa(os.Getpid())); !slices.Equal(got, []string{"/var/run/docker.sock"}) {
		t.Fatalf("daemonHosts(self) = %q", got)
	}
}

func TestParseCPULine(t *testing.T) {
	for _, c := range []struct {
		line        string
		idle, total uint64
		bad         bool
	}{
		{line: "cpu  100 5 50 800 20 1 2 3 0 0", idle: 820, total: 981},
		{line: "cpu  1 2 3 4 5 6 7 8", idle: 9, total: 36},
		{line: "cpu0 1 2 3 4 5 6 7 8 9 10", bad: true},
		{line: "cpu  1 2 3", bad: true},
		{line: "cpu  1 2 3 x 5 6 7 8", bad: true},
	} {
		idle, total, err := parseCPULine(c.line)
		if (err != nil) != c.bad || idle != c.idle || total != c.total {
			t.Errorf("parseCPULine(%q) = %d, %d, %v; want %d, %d, error %v", c.line, idle, total, err, c.idle, c.total, c.bad)
		}
	}
}
