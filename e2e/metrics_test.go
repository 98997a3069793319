package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/s3logs/s3logs/internal/loggen"
)

// TestMetrics runs the plugin with METRICS_ADDR (and PPROF) set and checks
// what it reports against what the test did, in three phases: a workload
// with S3 up (records and bytes in equal what the container wrote, the
// bytes uploaded and the compressed bytes written equal the objects in the
// bucket), an S3 outage (the shipping lag grows with the wall clock, retries
// rise, the bucket is reported failing, all of it returns to zero once S3 is
// back) and a full spool (the records counted as dropped are exactly the
// lines missing from the bucket). It also checks /healthz and pprof.
func TestMetrics(t *testing.T) {
	s := newSuite(t)
	addr := freeLoopbackAddr(t)
	pm := &promScraper{url: "http://" + addr}
	settings := []string{"METRICS_ADDR=" + addr, "PPROF=true", "UPLOAD_BACKOFF_MAX=3s", "SPOOL_LIMIT=25%", "SPOOL_POLICY=drop-oldest"}
	restoreSettings(t, s, settings)
	s.setPlugin(t, settings...)
	minioDown := false
	t.Cleanup(func() {
		if minioDown {
			if err := s.minio.Restart(); err != nil {
				t.Error(err)
			}
		}
	})
	pm.waitHealthy(t)

	t.Run("endpoints", func(t *testing.T) {
		code, body := pm.get(t, "/healthz")
		if code != 200 || body != "ok\napi: ok\nspool_writable: ok\nspool_lock: ok\n" {
			t.Errorf("/healthz: %d %q", code, body)
		}
		if code, body := pm.get(t, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
			t.Errorf("/debug/pprof/ with PPROF=true: %d", code)
		}
		m := pm.scrape(t)
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "s3logs_spool_limit_bytes", "s3logs_streams_open"} {
			if _, ok := m[name]; !ok {
				t.Errorf("/metrics lacks %s", name)
			}
		}
	})

	t.Run("workload", func(t *testing.T) {
		spec := loggen.Spec{Mode: loggen.ModeInterleave, Lines: 30_000, Rate: 6000, Tag: "mw"}
		wantOut, wantErr := loggen.Expected(spec, spec.Count())
		before := pm.scrape(t)
		c := s.start(t, "metrics-work", spec, "cache-disabled=true")
		// During the workload: the stream is open and records come in.
		var during promSample
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			during = pm.scrape(t)
			if during.delta(before, `s3logs_records_in_total{stream="stdout"}`) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no record counted 30 s into the workload")
			}
		}
		if during[`s3logs_streams_open`] < 1 {
			t.Errorf("streams_open = %v while the container logs", during[`s3logs_streams_open`])
		}
		c.wait(t)
		objs, _ := c.waitContent(t, time.Now(), time.Now().Add(slowDeadline), wantOut, wantErr)
		after := pm.waitSettled(t)
		var objBytes float64
		for _, o := range objs {
			objBytes += float64(o.Size)
		}
		bucket := `bucket="` + c.bucket + `"`
		checks := []struct {
			name      string
			got, want float64
		}{
			{"stdout records in", after.delta(before, `s3logs_records_in_total{stream="stdout"}`), float64(bytes.Count(wantOut, []byte("\n")))},
			{"stderr records in", after.delta(before, `s3logs_records_in_total{stream="stderr"}`), float64(bytes.Count(wantErr, []byte("\n")))},
			{"stdout bytes in", after.delta(before, `s3logs_bytes_in_total{stream="stdout"}`), float64(len(wantOut))},
			{"stderr bytes in", after.delta(before, `s3logs_bytes_in_total{stream="stderr"}`), float64(len(wantErr))},
			{"successful uploads", after.delta(before, `s3logs_uploads_total{`+bucket+`,code="none",result="success"}`), float64(len(objs))},
			{"bytes uploaded", after.delta(before, `s3logs_uploaded_bytes_total{`+bucket+`}`), objBytes},
			{"compressed bytes written", after.delta(before, `s3logs_segment_bytes_written_total`), objBytes},
			{"segments sealed", after.sum(`s3logs_segments_sealed_total{`) - before.sum(`s3logs_segments_sealed_total{`), float64(len(objs))},
			{"records dropped", after.sum(`s3logs_records_dropped_total{`) - before.sum(`s3logs_records_dropped_total{`), 0},
			{"upload retries", after.sum(`s3logs_upload_retries_total{`) - before.sum(`s3logs_upload_retries_total{`), 0},
			{"streams open after the container exited", after[`s3logs_streams_open`], 0},
			{"shipping lag", after[`s3logs_shipping_lag_seconds`], 0},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("%s: %v, want %v", ck.name, ck.got, ck.want)
			}
		}
		if after.delta(before, `s3logs_segments_sealed_total{reason="stop"}`) != 1 {
			t.Errorf("segments sealed at the container's stop: %v, want 1", after.delta(before, `s3logs_segments_sealed_total{reason="stop"}`))
		}
		if n := after[`s3logs_upload_duration_seconds_count{`+bucket+`,result="success"}`]; n != float64(len(objs)) {
			t.Errorf("upload latency histogram holds %v attempts, want %d", n, len(objs))
		}
		t.Logf("MEASURE metrics workload: lines=%d objects=%d bytes_in=%v uploaded_bytes=%v", spec.Count(), len(objs),
			after.delta(before, `s3logs_bytes_in_total{stream="stdout"}`)+after.delta(before, `s3logs_bytes_in_total{stream="stderr"}`), objBytes)
	})

	t.Run("s3-outage", func(t *testing.T) {
		spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 4000, Rate: 200, Tag: "mo"}
		wantOut, _ := loggen.Expected(spec, spec.Count())
		bucket := s.bucketName("metrics-outage")
		s.createBucket(t, bucket)
		before := pm.scrape(t)
		s.minio.Stop()
		minioDown = true
		// The container's segments, sealed every second, wait in the spool.
		c := &container{s: s, name: s.containerName("metrics-outage"), bucket: bucket, spec: spec}
		c.run(t, "segment-age=1s")
		time.Sleep(6 * time.Second)
		first, at1 := pm.scrape(t), time.Now()
		time.Sleep(10 * time.Second)
		second, at2 := pm.scrape(t), time.Now()
		lbl := `{bucket="` + bucket + `"}`
		lag1, lag2 := first[`s3logs_shipping_lag_seconds`], second[`s3logs_shipping_lag_seconds`]
		retries1, retries2 := first[`s3logs_upload_retries_total`+lbl], second[`s3logs_upload_retries_total`+lbl]
		failing1, failing2 := first[`s3logs_upload_failing_seconds`+lbl], second[`s3logs_upload_failing_seconds`+lbl]
		gap := at2.Sub(at1).Seconds()
		t.Logf("MEASURE metrics outage: after 6 s lag=%.1fs retries=%v failing=%.1fs spool_segments=%v; %.1f s later lag=%.1fs retries=%v failing=%.1fs spool_segments=%v",
			lag1, retries1, failing1, first[`s3logs_spool_segments`], gap, lag2, retries2, failing2, second[`s3logs_spool_segments`])
		// The oldest waiting segment stays the same, so the lag grows with
		// the clock (the scrape times are known to within a second).
		if lag1 <= 0 || lag2-lag1 < gap-1 || lag2-lag1 > gap+1 {
			t.Errorf("shipping lag %.1f s then %.1f s, %.1f s apart: want it to grow with the clock", lag1, lag2, gap)
		}
		// UPLOAD_BACKOFF_MAX=3s: at least one probe every 3 s.
		if retries2-retries1 < 2 {
			t.Errorf("upload retries went from %v to %v in %.1f s with S3 down", retries1, retries2, gap)
		}
		if failing1 <= 0 || failing2-failing1 < gap-1 {
			t.Errorf("bucket failing for %.1f s then %.1f s: want it reported and growing", failing1, failing2)
		}
		if second[`s3logs_spool_segments`] <= first[`s3logs_spool_segments`] || second[`s3logs_spool_bytes`] <= 0 {
			t.Errorf("spool segments %v then %v: want the backlog to grow", first[`s3logs_spool_segments`], second[`s3logs_spool_segments`])
		}
		failed := map[string]float64{}
		for k, v := range second {
			if strings.HasPrefix(k, `s3logs_uploads_total{bucket="`+bucket+`",`) && !strings.Contains(k, `result="success"`) {
				failed[k] = v - before[k]
			}
		}
		t.Logf("failed attempts with S3 down: %v", failed)
		if n := failed[`s3logs_uploads_total{bucket="`+bucket+`",code="NetworkError",result="retryable_error"}`]; n < 3 || len(failed) != 1 {
			t.Errorf("failed attempts by code and result: %v, want at least 3, all retryable_error with code NetworkError", failed)
		}
		if code, body := pm.get(t, "/healthz"); code != 200 {
			t.Errorf("/healthz with S3 down: %d %q (S3 is not the plugin's health)", code, body)
		}

		if err := s.minio.Restart(); err != nil {
			t.Fatal(err)
		}
		minioDown = false
		c.wait(t)
		c.waitContent(t, time.Now(), time.Now().Add(slowDeadline), wantOut, nil)
		after := pm.waitSettled(t)
		if _, ok := after[`s3logs_upload_failing_seconds`+lbl]; ok || after[`s3logs_shipping_lag_seconds`] != 0 || after[`s3logs_spool_segments`] != 0 {
			t.Errorf("after S3 came back: failing=%v lag=%v spool_segments=%v, want no failing bucket, no lag, an empty spool",
				after[`s3logs_upload_failing_seconds`+lbl], after[`s3logs_shipping_lag_seconds`], after[`s3logs_spool_segments`])
		}
		if got := after.delta(before, `s3logs_records_in_total{stream="stdout"}`); got != float64(spec.Count()) {
			t.Errorf("records in: %v, want %d", got, spec.Count())
		}
		if d := after.sum(`s3logs_records_dropped_total{`) - before.sum(`s3logs_records_dropped_total{`); d != 0 {
			t.Errorf("%v records dropped during an outage the spool held", d)
		}
	})

	t.Run("spool-full", func(t *testing.T) {
		// As TestFaults/spool-full: ~9 MB of poorly compressible lines in
		// 64 KiB segments against a 1 MiB limit, S3 down: drop-oldest.
		s.setPlugin(t, "SPOOL_LIMIT=1m")
		pm.waitHealthy(t)
		spec := loggen.Spec{Mode: loggen.ModeBulk, Lines: 60_000, Size: 200, Tag: "mf"}
		c := &container{s: s, name: s.containerName("metrics-full"), bucket: s.bucketName("metrics-full"), spec: spec}
		s.createBucket(t, c.bucket)
		before := pm.scrape(t)
		if before[`s3logs_spool_limit_bytes`] != 1<<20 {
			t.Errorf("spool limit %v, want SPOOL_LIMIT=1m", before[`s3logs_spool_limit_bytes`])
		}
		s.minio.Stop()
		minioDown = true
		c.run(t, "segment-size=64k")
		c.wait(t)
		time.Sleep(2 * time.Second) // the janitor visits every second
		full := pm.scrape(t)
		if err := s.minio.Restart(); err != nil {
			t.Fatal(err)
		}
		minioDown = false
		after := pm.waitSettled(t)
		_, out, _, _ := c.fetchAll(t)
		want, _ := loggen.Expected(spec, spec.Count())
		tl := tally(out, splitLines(want))
		dropped := after.delta(before, `s3logs_records_dropped_total{cause="spool_full"}`)
		writeErr := after.delta(before, `s3logs_records_dropped_total{cause="write_error"}`)
		segs := after.delta(before, `s3logs_segments_dropped_total`)
		t.Logf("MEASURE metrics spool-full: %s dropped_records=%v write_error=%v dropped_segments=%v spool_bytes_when_full=%v limit=%v",
			tl, dropped, writeErr, segs, full[`s3logs_spool_bytes`], full[`s3logs_spool_limit_bytes`])
		if tl.lost == 0 || segs == 0 {
			t.Fatalf("the spool limit never acted: %s, %v segments dropped", tl, segs)
		}
		if tl.dups > 0 || tl.foreign > 0 || tl.outOfOrder > 0 {
			t.Errorf("stored lines duplicated, altered or out of order: %s", tl)
		}
		if float64(tl.lost) != dropped+writeErr {
			t.Errorf("%d lines missing from the bucket, metrics count %v dropped (spool full) + %v (write error)", tl.lost, dropped, writeErr)
		}
		if got := after.delta(before, `s3logs_records_in_total{stream="stdout"}`); got != float64(spec.Count()) {
			t.Errorf("records in: %v, want %d", got, spec.Count())
		}
		if full[`s3logs_spool_bytes`] > full[`s3logs_spool_limit_bytes`] {
			t.Errorf("spool holds %v bytes after the janitor's visit, over the %v limit", full[`s3logs_spool_bytes`], full[`s3logs_spool_limit_bytes`])
		}
	})
}

// restoreSettings puts back, when t ends, the plugin's values of the
// settings named in kvs (KEY=VALUE), as they are now.
func restoreSettings(t *testing.T, s *suite, kvs []string) {
	t.Helper()
	keys := map[string]bool{}
	for _, kv := range kvs {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	var restore []string
	for _, kv := range s.inspectPlugin(t).Settings.Env {
		if k, _, _ := strings.Cut(kv, "="); keys[k] {
			restore = append(restore, kv)
		}
	}
	if len(restore) != len(keys) {
		t.Fatalf("plugin %s does not declare every setting of %q (it has %q): reinstall it with make plugin", s.plugin, kvs, restore)
	}
	t.Cleanup(func() { s.setPlugin(t, restore...) })
}

// freeLoopbackAddr returns a 127.0.0.1 address whose port was free a moment
// ago; the plugin (host network) listens on it.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// promScraper reads the plugin's metrics address.
type promScraper struct{ url string }

// promSample is one scrape: `name{label="value",...}` (labels sorted, as
// the client library writes them) → value; a histogram gives name_count
// and name_sum with its labels.
type promSample map[string]float64

// delta is the increase of one series between two scrapes (absent = 0).
func (m promSample) delta(before promSample, key string) float64 { return m[key] - before[key] }

// sum adds the series whose key starts with prefix.
func (m promSample) sum(prefix string) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func (p *promScraper) get(t *testing.T, path string) (int, string) {
	t.Helper()
	code, body, err := p.tryGet(path)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

func (p *promScraper) tryGet(path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitHealthy waits until /healthz answers 200 (the plugin was just
// enabled).
func (p *promScraper) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(slowDeadline)
	for {
		code, body, err := p.tryGet("/healthz")
		if err == nil && code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not ok %v after enabling the plugin: %d %q %v", slowDeadline, code, body, err)
		}
		time.Sleep(pollInterval)
	}
}

// scrape reads /metrics.
func (p *promScraper) scrape(t *testing.T) promSample {
	t.Helper()
	code, body := p.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	out := promSample{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(ls)
			labels := ""
			if len(ls) > 0 {
				labels = "{" + strings.Join(ls, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name+labels] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name+labels] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labels] = m.GetHistogram().GetSampleSum()
			case dto.MetricType_UNTYPED:
				out[name+labels] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// waitSettled scrapes until no stream is open, nothing waits for upload
// and no bucket is failing, and returns that scrape.
func (p *promScraper) waitSettled(t *testing.T) promSample {
	t.Helper()
	deadline := time.Now().Add(slowDeadline)
	for {
		m := p.scrape(t)
		if m[`s3logs_streams_open`] == 0 && m[`s3logs_spool_segments`] == 0 && m[`s3logs_upload_queue_segments`] == 0 &&
			m.sum(`s3logs_upload_failing_seconds`) == 0 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled %v later: streams_open=%v spool_segments=%v upload_queue=%v", slowDeadline,
				m[`s3logs_streams_open`], m[`s3logs_spool_segments`], m[`s3logs_upload_queue_segments`])
		}
		time.Sleep(pollInterval)
	}
}
