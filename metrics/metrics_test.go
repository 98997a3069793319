package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/s3logs/s3logs/driver"
	"github.com/s3logs/s3logs/segment"
	"github.com/s3logs/s3logs/uploader"
)

// Fake sources: each returns a fixed snapshot.
type fakeDriver driver.Stats
type fakeSpool segment.Stats
type fakeUploader uploader.Stats

func (f fakeDriver) Stats() driver.Stats     { return driver.Stats(f) }
func (f fakeSpool) Stats() segment.Stats     { return segment.Stats(f) }
func (f fakeUploader) Stats() uploader.Stats { return uploader.Stats(f) }

// values gathers g and returns every sample of the s3logs_ families as
// `name{label="value",...}` (labels sorted) → value; a histogram gives
// name_count and name_sum.
func values(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "s3logs_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(ls)
			key := mf.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				name, rest, _ := strings.Cut(key, "{")
				if rest != "" {
					rest = "{" + rest
				}
				out[name+"_count"+rest] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+rest] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func TestCollectorReadsTheSources(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	src := Sources{
		Driver: fakeDriver{StreamsOpen: 3, StreamsReattached: 2, Stdout: driver.In{Records: 10, Bytes: 110}, Stderr: driver.In{Records: 4, Bytes: 20},
			NotStored: 5, Unstorable: 6, CorruptFrames: 7, SkippedBytes: 800},
		Spool: fakeSpool{SealedBytes: 4096, SealedSegments: 2, OldestSealed: now.Add(-90 * time.Second), Limit: 1 << 20, FreeBytes: 1 << 30, JournalBytes: 3 << 20,
			WrittenBytes: 123456, Sealed: map[string]uint64{"size": 1, "age": 2, "stop": 3, "shutdown": 0, "recovered": 4},
			DroppedSegments: 8, DroppedRecords: 900, LostOnError: 11},
		Uploader: fakeUploader{Pending: 5, Failing: []uploader.FailingDestination{
			{Bucket: "b1", Endpoint: "http://a", Failures: 3, Since: now.Add(-10 * time.Minute)},
			{Bucket: "b1", Endpoint: "http://b", Failures: 1, Since: now.Add(-time.Minute)},
			{Bucket: "b2", Failures: 1, Since: now.Add(-30 * time.Second)},
		}},
		Now: func() time.Time { return now },
	}
	reg := prometheus.NewRegistry()
	if err := Register(reg, src); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`s3logs_streams_open`:                                  3,
		`s3logs_streams_reattached_total`:                      2,
		`s3logs_records_in_total{stream="stdout"}`:             10,
		`s3logs_records_in_total{stream="stderr"}`:             4,
		`s3logs_bytes_in_total{stream="stdout"}`:               110,
		`s3logs_bytes_in_total{stream="stderr"}`:               20,
		`s3logs_records_dropped_total{cause="spool_full"}`:     900,
		`s3logs_records_dropped_total{cause="write_error"}`:    5 + 11,
		`s3logs_records_dropped_total{cause="no_destination"}`: 6,
		`s3logs_records_dropped_total{cause="corrupt_frame"}`:  7,
		`s3logs_fifo_skipped_bytes_total`:                      800,
		`s3logs_segment_bytes_written_total`:                   123456,
		`s3logs_segments_sealed_total{reason="size"}`:          1,
		`s3logs_segments_sealed_total{reason="age"}`:           2,
		`s3logs_segments_sealed_total{reason="stop"}`:          3,
		`s3logs_segments_sealed_total{reason="shutdown"}`:      0,
		`s3logs_segments_sealed_total{reason="recovered"}`:     4,
		`s3logs_segments_dropped_total`:                        8,
		`s3logs_spool_bytes`:                                   4096,
		`s3logs_spool_segments`:                                2,
		`s3logs_spool_limit_bytes`:                             1 << 20,
		`s3logs_spool_free_bytes`:                              1 << 30,
		`s3logs_journal_bytes`:                                 3 << 20,
		`s3logs_shipping_lag_seconds`:                          90,
		`s3logs_upload_queue_segments`:                         5,
		`s3logs_upload_failing_seconds{bucket="b1"}`:           600,
		`s3logs_upload_failing_seconds{bucket="b2"}`:           30,
	}
	got := values(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected sample %s = %v", k, got[k])
		}
	}
	// Nothing waiting: no lag; an unknown free space is left out.
	src.Spool = fakeSpool{FreeBytes: -1, Sealed: map[string]uint64{}}
	src.Driver = fakeDriver{Other: driver.In{Records: 1, Bytes: 2}}
	src.Uploader = fakeUploader{}
	reg = prometheus.NewRegistry()
	if err := Register(reg, src); err != nil {
		t.Fatal(err)
	}
	got = values(t, reg)
	if v, ok := got[`s3logs_shipping_lag_seconds`]; !ok || v != 0 {
		t.Errorf("lag with nothing waiting: %v %v", v, ok)
	}
	if _, ok := got[`s3logs_spool_free_bytes`]; ok {
		t.Error("unknown free space reported")
	}
	if got[`s3logs_records_in_total{stream="other"}`] != 1 {
		t.Errorf("records of another source not reported: %v", got)
	}
}

func TestRegisterNeedsEverySource(t *testing.T) {
	if err := Register(prometheus.NewRegistry(), Sources{Driver: fakeDriver{}}); err == nil {
		t.Fatal("Register without Spool and Uploader succeeded")
	}
}

func TestUploadsCountAttempts(t *testing.T) {
	reg := prometheus.NewRegistry()
	u, err := NewUploads(reg)
	if err != nil {
		t.Fatal(err)
	}
	u.ObserveUpload(uploader.Attempt{Bucket: "logs", Result: uploader.ResultRetryable, Code: "NetworkError", Bytes: 100, Duration: time.Second})
	u.ObserveUpload(uploader.Attempt{Bucket: "logs", Result: uploader.ResultRetryable, Code: "NetworkError", Bytes: 100, Duration: 2 * time.Second, Retry: true})
	u.ObserveUpload(uploader.Attempt{Bucket: "logs", Result: uploader.ResultSuccess, Bytes: 100, Duration: 250 * time.Millisecond, Retry: true})
	u.ObserveUpload(uploader.Attempt{Bucket: "other-bucket", Result: uploader.ResultSuccess, Bytes: 7, Duration: time.Millisecond})
	got := values(t, reg)
	want := map[string]float64{
		`s3logs_uploads_total{bucket="logs",code="NetworkError",result="retryable_error"}`: 2,
		`s3logs_uploads_total{bucket="logs",code="none",result="success"}`:                 1,
		`s3logs_uploads_total{bucket="other-bucket",code="none",result="success"}`:         1,
		`s3logs_upload_retries_total{bucket="logs"}`:                                       2,
		`s3logs_uploaded_bytes_total{bucket="logs"}`:                                       100,
		`s3logs_uploaded_bytes_total{bucket="other-bucket"}`:                               7,
		`s3logs_upload_duration_seconds_count{bucket="logs",result="retryable_error"}`:     2,
		`s3logs_upload_duration_seconds_sum{bucket="logs",result="retryable_error"}`:       3,
		`s3logs_upload_duration_seconds_count{bucket="logs",result="success"}`:             1,
		`s3logs_upload_duration_seconds_sum{bucket="logs",result="success"}`:               0.25,
		`s3logs_upload_duration_seconds_count{bucket="other-bucket",result="success"}`:     1,
		`s3logs_upload_duration_seconds_sum{bucket="other-bucket",result="success"}`:       0.001,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d samples, want %d: %v", len(got), len(want), got)
	}
}

func TestUploadsBoundLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	u, err := NewUploads(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range MaxBuckets + 10 {
		u.ObserveUpload(uploader.Attempt{Bucket: fmt.Sprint("b", i), Result: uploader.ResultPermanent, Code: fmt.Sprint("Code", i%(MaxCodes+5))})
	}
	got := values(t, reg)
	buckets, codes := map[string]bool{}, map[string]bool{}
	for k := range got {
		if !strings.HasPrefix(k, "s3logs_uploads_total{") {
			continue
		}
		for _, l := range strings.Split(strings.Trim(k[len("s3logs_uploads_total"):], "{}"), ",") {
			name, v, _ := strings.Cut(l, "=")
			switch name {
			case "bucket":
				buckets[v] = true
			case "code":
				codes[v] = true
			}
		}
	}
	if len(buckets) != MaxBuckets+1 || !buckets[`"other"`] || len(codes) != MaxCodes+1 || !codes[`"other"`] {
		t.Errorf("%d bucket and %d code label values, want %d and %d with \"other\"", len(buckets), len(codes), MaxBuckets+1, MaxCodes+1)
	}
	if got[`s3logs_uploads_total{bucket="other",code="other",result="permanent_error"}`]+
		got[`s3logs_uploads_total{bucket="other",code="Code50",result="permanent_error"}`] == 0 {
		t.Errorf("attempts beyond the bounds not counted under other: %v", got)
	}
}

// TestMetricsLint runs Prometheus' own linter over every metric the plugin
// exports.
func TestMetricsLint(t *testing.T) {
	reg := newFullRegistry(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ours []*dto.MetricFamily
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "s3logs_") {
			ours = append(ours, mf)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// newFullRegistry registers every metric, with one upload observed so the
// vectors have samples.
func newFullRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	u, err := NewUploads(reg)
	if err != nil {
		t.Fatal(err)
	}
	u.ObserveUpload(uploader.Attempt{Bucket: "b", Result: uploader.ResultSuccess, Retry: true, Bytes: 1})
	err = Register(reg, Sources{
		Driver:   fakeDriver{},
		Spool:    fakeSpool{Sealed: map[string]uint64{"size": 1}},
		Uploader: fakeUploader{Failing: []uploader.FailingDestination{{Bucket: "b", Since: time.Now()}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestHandler(t *testing.T) {
	reg := newFullRegistry(t)
	var fail error
	checks := []Check{
		{Name: "api", Run: func(ctx context.Context) error { return nil }},
		{Name: "spool_lock", Run: func(ctx context.Context) error { return fail }},
	}
	get := func(srv *httptest.Server, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	srv := httptest.NewServer(Handler(reg, HandlerOptions{Checks: checks}))
	defer srv.Close()

	if code, body := get(srv, "/metrics"); code != 200 || !strings.Contains(body, "s3logs_uploads_total{") || !strings.Contains(body, "go_goroutines ") || !strings.Contains(body, "process_") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, body := get(srv, "/healthz"); code != 200 || body != "ok\napi: ok\nspool_lock: ok\n" {
		t.Errorf("/healthz healthy: %d %q", code, body)
	}
	fail = errors.New("segment: spool lock not held: released")
	if code, body := get(srv, "/healthz"); code != 503 || body != "api: ok\nspool_lock: FAIL: segment: spool lock not held: released\n" {
		t.Errorf("/healthz failing: %d %q", code, body)
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/", "/metricsx"} {
		if code, _ := get(srv, p); code != 404 {
			t.Errorf("%s without Pprof: %d, want 404", p, code)
		}
	}
	if resp, err := http.Post(srv.URL+"/healthz", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	psrv := httptest.NewServer(Handler(reg, HandlerOptions{Pprof: true}))
	defer psrv.Close()
	if code, body := get(psrv, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with Pprof: %d", code)
	}
	if code, body := get(psrv, "/debug/pprof/cmdline"); code != 200 || body == "" {
		t.Errorf("/debug/pprof/cmdline: %d", code)
	}
	if code, body := get(psrv, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz without checks: %d %q", code, body)
	}
}

// TestHealthCheckContext: each check runs with a deadline (CheckTimeout),
// so a check that honours its context cannot hang /healthz.
func TestHealthCheckContext(t *testing.T) {
	var deadline bool
	code, body := health(context.Background(), []Check{{Name: "slow", Run: func(ctx context.Context) error {
		_, deadline = ctx.Deadline()
		return nil
	}}})
	if code != 200 || !deadline || !slices.Contains(strings.Split(body, "\n"), "slow: ok") {
		t.Errorf("%d %q, deadline set: %v", code, body, deadline)
	}
}

// TestMonitoringFilesUseExportedNames: every s3logs_ name the alert rules
// and the Grafana dashboard in monitoring/ query is one the plugin
// exports (a histogram also as _bucket, _sum and _count), and the
// dashboard is valid JSON.
func TestMonitoringFilesUseExportedNames(t *testing.T) {
	mfs, err := newFullRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, mf := range mfs {
		known[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[mf.GetName()+s] = true
			}
		}
	}
	name := regexp.MustCompile(`s3logs_[a-z0-9_]+`)
	for _, f := range []string{"../monitoring/alerts.yml", "../monitoring/grafana-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".json") && !json.Valid(b) {
			t.Errorf("%s is not valid JSON", f)
		}
		used := 0
		for _, n := range name.FindAllString(string(b), -1) {
			used++
			if !known[n] {
				t.Errorf("%s uses %s, which the plugin does not export", f, n)
			}
		}
		if used == 0 {
			t.Errorf("%s uses no s3logs metric", f)
		}
	}
}
