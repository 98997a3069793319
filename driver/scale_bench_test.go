package driver

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
)

// BenchmarkIdleContainers attaches 1,000 containers that each logged one
// line and went idle, through the HTTP handler as Docker calls it, and
// reports StartLogging's latency (p50, p99), the process's RSS once the
// streams are idle and its peak, the Go heap and stacks, and goroutines and
// open fds per stream. Budgets (issue 11): RSS under 256 MiB, p99 under
// 50 ms.
func BenchmarkIdleContainers(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		e := newEnv(b)
		h := Handler(e.d, slog.New(slog.DiscardHandler))
		g0, fd0 := runtime.NumGoroutine(), openFDs(b)
		var lat []time.Duration
		var writers []*os.File
		for k := 0; k < n; k++ {
			path, w := e.fifo(fmt.Sprintf("c%04d", k))
			writers = append(writers, w)
			if _, err := w.Write(frame(b, &logentry.LogEntry{Source: "stdout", TimeNano: time.Now().UnixNano(), Line: []byte("one line, then idle")})); err != nil {
				b.Fatal(err)
			}
			in := info(map[string]string{"bucket": "logs"})
			in.ContainerID = fmt.Sprintf("%064x", k+1)
			in.ContainerName = fmt.Sprintf("/idle-%d", k)
			body := fmt.Sprintf(`{"File":%q,"Info":%s}`, path, mustJSON(b, in))
			start := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/LogDriver.StartLogging", strings.NewReader(body)))
			lat = append(lat, time.Since(start))
			if rec.Code != 200 || strings.Contains(rec.Body.String(), `"Err":"s`) {
				b.Fatalf("StartLogging %d: %d %s", k, rec.Code, rec.Body.String())
			}
		}
		// Idle: the spool's ticker flushes and returns the encoders, and
		// hands their memory back to the system at most every 10 s.
		time.Sleep(12 * time.Second)
		rss := procStatus(b, "VmRSS:")
		b.ReportMetric(float64(procStatus(b, "VmHWM:"))/(1<<20), "peak-RSS-MiB")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(ms.StackInuse)/(1<<20), "stack-MiB")
		g, fd := runtime.NumGoroutine()-g0, openFDs(b)-fd0-n // less the test's own write ends
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
		b.ReportMetric(float64(g)/n, "goroutines/stream")
		b.ReportMetric(float64(fd)/n, "fds/stream")
		for _, w := range writers {
			w.Close()
		}
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// openFDs counts the process's open file descriptors.
func openFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

// procStatus reads a size field of /proc/self/status (VmRSS:, VmHWM:).
func procStatus(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no " + field)
	return 0
}
